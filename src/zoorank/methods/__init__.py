"""Learned rankers (Fennec, Model Spider, MetaRank): ``fit`` offline from history, ``rank`` online."""
