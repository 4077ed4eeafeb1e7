"""BM25 over the indexed chunks (bm25s), kept in memory and rebuilt when the index changes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import bm25s
import Stemmer
from bm25s.tokenization import Tokenizer

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG


class LexicalIndex:
    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self.ids = list(ids)
        # Stemming lets "descaling" match "descale" and "returns" match "returned".
        self._tokenizer = Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english").stemWord)
        self._retriever: bm25s.BM25 | None = None
        if self.ids:
            tokens = self._tokenizer.tokenize(
                list(texts), update_vocab=True, return_as="ids", show_progress=False
            )
            self._retriever = bm25s.BM25()
            self._retriever.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) best first; only chunks sharing a term with the query."""
        if self._retriever is None or n <= 0:
            return []
        vocab = self._tokenizer.get_vocab_dict()
        known = [
            t
            for t in self._tokenizer.tokenize(
                [query], update_vocab=False, return_as="string", show_progress=False
            )[0]
            if t in vocab
        ]
        if not known:
            return []
        query_ids = [[vocab[t] for t in known]]
        # n_threads=0: in this thread; any other value starts a thread pool per call (~2 ms).
        results, scores = self._retriever.retrieve(
            query_ids, k=min(n, len(self.ids)), show_progress=False, n_threads=0
        )
        return [
            (self.ids[int(i)], float(s))
            for i, s in zip(results[0], scores[0], strict=True)
            if s > 0
        ]
