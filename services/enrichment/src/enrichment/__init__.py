"""The enrichment service: battle summaries over the battles database."""
