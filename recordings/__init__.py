"""Recordings, transcripts, summaries, customer records, privacy."""
