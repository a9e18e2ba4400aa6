"""What the explorer pages and the CLI ask of saved runs: the one query layer (`query`), the
tables the pages show (`views`), two runs compared user by user (`agreement`), embedding
projections (`projection`) and the genres they keep together (`genre_groups`), what a run's
lists are made of (`list_mix`), Be the user (`be_user`) and What if (`what_if`)."""
