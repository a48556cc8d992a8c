"""The model zoo: the plugin contract and manager, cards, model folders, loading, the catalog of
ids and the Hub. See ``docs/ARCHITECTURE.md`` for which of these lower layers may use."""
