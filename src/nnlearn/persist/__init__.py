"""Files written safely and read warily.

==================  ==============================================================
``_atomic``         writes: atomic replacement, no silent overwrite, no special files
``_reading``        reads: regular files only, ``.npz`` archives within a bound
``_archive``        nnlearn's archives: ``.npz`` arrays, a JSON document, checksums
``_schema``         the checks a JSON document must pass, with one-line messages
==================  ==============================================================

Model files (:mod:`nnlearn.model`) and checkpoints (:mod:`nnlearn.training`) are
archives; every file nnlearn writes goes through :func:`atomic_write`.
"""

from ._archive import FORMAT_VERSION, read_archive, read_meta, write_archive
from ._atomic import (
    OutputExistsError,
    SpecialFileError,
    atomic_write,
    check_replaceable,
    probe_directory,
    remove_stale_temporaries,
    write_new,
)
from ._reading import default_max_bytes, open_regular, physical_memory, read_npz, regular_file
from ._schema import SchemaError

__all__ = [
    "atomic_write",
    "write_new",
    "check_replaceable",
    "probe_directory",
    "remove_stale_temporaries",
    "OutputExistsError",
    "SpecialFileError",
    "regular_file",
    "open_regular",
    "read_npz",
    "default_max_bytes",
    "physical_memory",
    "write_archive",
    "read_archive",
    "read_meta",
    "FORMAT_VERSION",
    "SchemaError",
]
