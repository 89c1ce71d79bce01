"""The second reading of reports that validation uses: independent of the teacher's reader (issue 15)."""

from datakit.reading.second.reader import Mention, Reading, SecondReader, sentences_of, stem, tokens_of

__all__ = ["Mention", "Reading", "SecondReader", "sentences_of", "stem", "tokens_of"]
