"""Streamlit helpers shared by the pages: navigation, cached access to the engine, safe text."""
