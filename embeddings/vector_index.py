"""Exact inner-product search over passage vectors, keyed by int64 passage ids (FAISS).

File format: an 8-byte magic and a header holding the dimension, the FAISS index bytes, then a
trailer with the payload length and its CRC-32. The checksum catches what FAISS's reader does not:
a flipped byte inside the vector data would otherwise load silently as a wrong vector.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

from embeddings.errors import EmbeddingError, IndexFormatError

_MAGIC = b"SQAVIDX1"
_END_MAGIC = b"SQAVEND1"
_HEADER = struct.Struct("<I")  # dim
_TRAILER = struct.Struct("<QI")  # payload length, CRC-32 of the payload


class VectorIndex:
    """A FAISS ``IndexIDMap2(IndexFlatIP(dim))``: exact search, ids chosen by the caller.

    Not thread-safe: FAISS mutations must not overlap with searches, so the caller holds one lock
    around every call (searches may share a read lock only if nothing writes meanwhile).
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise EmbeddingError(f"dim must be positive, got {dim}")
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._ids_cache: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """The stored ids (int64), in storage order."""
        return self._ids().copy()

    def _ids(self) -> np.ndarray:
        if self._ids_cache is None:
            self._ids_cache = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        return self._ids_cache

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add ``vectors[i]`` under ``ids[i]``. All or nothing: any invalid input adds none.

        Ids already present are rejected rather than duplicated; to replace a passage's vector,
        ``remove`` it first.
        """
        id_array = _as_ids(ids)
        vec = np.asarray(vectors)
        if vec.ndim != 2 or vec.shape[1] != self.dim:
            raise EmbeddingError(f"vectors must have shape (n, {self.dim}), got {vec.shape}")
        if vec.shape[0] != id_array.size:
            raise EmbeddingError(f"{id_array.size} ids for {vec.shape[0]} vectors")
        if id_array.size == 0:
            return
        vec = np.ascontiguousarray(vec, dtype=np.float32)
        if not np.isfinite(vec).all():
            raise EmbeddingError("vectors contain NaN or infinity")
        if np.unique(id_array).size != id_array.size:
            raise EmbeddingError("duplicate ids in one add")
        clash = id_array[np.isin(id_array, self._ids())]
        if clash.size:
            raise EmbeddingError(f"ids already in the index: {clash[:10].tolist()}")
        self._index.add_with_ids(vec, id_array)
        self._ids_cache = None

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Remove these ids; return how many were present. Unknown ids are ignored."""
        id_array = _as_ids(ids)
        if id_array.size == 0 or len(self) == 0:
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(id_array)))
        if removed:
            self._ids_cache = None
        return removed

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """The ``k`` best ``(id, inner product)`` per query row, best first.

        ``allowed_ids`` restricts the candidates to those ids (a filter applied inside the scan,
        so a query still gets up to ``k`` results however few ids are allowed).
        """
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise EmbeddingError(f"queries must have shape (m, {self.dim}), got {q.shape}")
        q = np.ascontiguousarray(q, dtype=np.float32)
        m = q.shape[0]
        params = None
        if allowed_ids is not None:
            allowed = _as_ids(allowed_ids)
            if allowed.size == 0:
                return [[] for _ in range(m)]
            # IndexIDMap2 translates the selector from its external ids to the flat index's rows.
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        k = min(k, len(self))
        if k <= 0 or m == 0:
            return [[] for _ in range(m)]
        scores, found = self._index.search(q, k, params=params)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(found, scores, strict=True)
        ]

    def similarity(self, query: np.ndarray, ids: np.ndarray | list[int]) -> dict[int, float]:
        """Exact inner products of one query with the stored vectors of ``ids`` (unknown ids are
        left out): scores for candidates another retriever found outside the top ``k``."""
        id_array = _as_ids(ids)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise EmbeddingError(f"query must have {self.dim} dimensions, got {q.shape[0]}")
        known = id_array[np.isin(id_array, self._ids())]
        if known.size == 0:
            return {}
        vectors = self._index.reconstruct_batch(known)
        return dict(zip(known.tolist(), (vectors @ q).tolist(), strict=True))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically.

        The bytes go to ``path.tmp``, are fsynced, and replace ``path`` in one rename; the directory
        is fsynced so the rename survives a power cut. A crash at any point leaves either the old
        file or the new one, never a mix.
        """
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                self._write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)

    def _write(self, fh: BinaryIO) -> None:
        fh.write(_MAGIC)
        fh.write(_HEADER.pack(self.dim))
        length = 0
        crc = 0

        def write_chunk(chunk: bytes) -> int:
            nonlocal length, crc
            length += len(chunk)
            crc = zlib.crc32(chunk, crc)
            return fh.write(chunk)

        # Streamed through a callback rather than serialize_index, which would hold a second
        # in-memory copy of every vector.
        writer = faiss.PyCallbackIOWriter(write_chunk)
        faiss.write_index(self._index, writer)
        del writer
        fh.write(_TRAILER.pack(length, crc))
        fh.write(_END_MAGIC)

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> VectorIndex:
        """Read an index written by ``save``.

        Raises ``FileNotFoundError`` if there is no file, and ``IndexFormatError`` if it is not a
        complete, intact index of dimension ``dim``.
        """
        prefix = len(_MAGIC) + _HEADER.size
        suffix = _TRAILER.size + len(_END_MAGIC)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < prefix + suffix or fh.read(len(_MAGIC)) != _MAGIC:
                raise IndexFormatError(f"{path}: not a speechqa vector index, or truncated")
            (stored_dim,) = _HEADER.unpack(fh.read(_HEADER.size))
            if stored_dim != dim:
                raise IndexFormatError(
                    f"{path}: index has dimension {stored_dim}, the encoder has {dim}"
                )
            fh.seek(size - suffix)
            trailer = fh.read(suffix)
            length, crc = _TRAILER.unpack(trailer[: _TRAILER.size])
            if trailer[_TRAILER.size :] != _END_MAGIC or length != size - prefix - suffix:
                raise IndexFormatError(f"{path}: truncated or damaged trailer")
            # Verified before FAISS parses anything: a corrupt length field inside the FAISS
            # bytes could otherwise make it allocate terabytes.
            fh.seek(prefix)
            if _crc32(fh, length) != crc:
                raise IndexFormatError(f"{path}: checksum mismatch, the file is corrupt")
            fh.seek(prefix)
            index = _read_faiss(fh, length, path)
        if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
            raise IndexFormatError(f"{path}: unexpected FAISS index type or dimension")
        inner = faiss.downcast_index(index.index)
        if not isinstance(inner, faiss.IndexFlatIP):
            raise IndexFormatError(
                f"{path}: inner index is {type(inner).__name__}, not IndexFlatIP"
            )
        result = cls(dim)
        result._index = index
        return result


def _crc32(fh: BinaryIO, length: int) -> int:
    crc = 0
    remaining = length
    while remaining:
        chunk = fh.read(min(remaining, 1 << 22))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        remaining -= len(chunk)
    return crc


def _read_faiss(fh: BinaryIO, length: int, path: str | os.PathLike[str]) -> faiss.Index:
    remaining = length

    def read_chunk(size: int) -> bytes:
        nonlocal remaining
        chunk = fh.read(min(size, remaining))
        remaining -= len(chunk)
        return chunk

    reader = faiss.PyCallbackIOReader(read_chunk)
    try:
        return faiss.read_index(reader)
    except (RuntimeError, MemoryError) as exc:
        raise IndexFormatError(f"{path}: FAISS cannot read the index: {exc}") from exc
    finally:
        del reader


def _as_ids(ids: np.ndarray | list[int]) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise EmbeddingError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise EmbeddingError(f"ids must be integers, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        # Some platforms (Windows) cannot open a directory; the rename is still atomic there.
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
