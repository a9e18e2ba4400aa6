"""The benchmark: our models against implicit and LightFM (`runner`, `peers`), optionally under
a background load (`background_load`)."""
