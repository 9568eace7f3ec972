"""Knowledge: ingest documents into a vector store, retrieve passages, answer with citations."""
