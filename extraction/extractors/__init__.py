"""Extractor backends behind one interface (``base.Extractor``)."""
