"""The knowledge base: entries, the perception tree, loading and checking them, BM25, finding-model import.

Used by retrieve (ranking), annotate (reasoning), validate (citations) and the reading package (terms).
"""

from datakit.knowledge.entries import Entry, KnowledgeBase, Region, UnknownKnowledgeId
from datakit.knowledge.kb import load_configured, load_kb

__all__ = ["Entry", "KnowledgeBase", "Region", "UnknownKnowledgeId", "load_configured", "load_kb"]
