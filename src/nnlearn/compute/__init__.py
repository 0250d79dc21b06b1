"""Where the examples live and the cost is summed: one data term each.

==================  ==============================================================
``_dataterm``       :class:`DataTerm`, the interface; the objectives built on one
``_threads``        :class:`ShardedDataTerm`: this machine's cores, in shards
``_cluster``        :class:`ClusterDataTerm`: partitions on a Dask cluster
``_partitions``     the actor on each worker that holds its partitions
``_products``       which BLAS library multiplies the examples (``blas``)
``_backends``       :class:`ArrayDataTerm`: examples on a GPU, through the array API
==================  ==============================================================

A data term returns the unnormalised sums of the cost and its gradient over its
examples (:func:`nnlearn.core.data_term`), added in a fixed order, so the same inputs
give the same bits however the work is spread. The optimisers and ``train`` do not know
which one they got. Dask is imported only when a cluster is used.
"""

from ._backends import ArrayDataTerm, device_dataset, on_accelerator
from ._cluster import ClusterDataTerm, ClusterError, ClusterLost, WorkerLost, connect, local_cluster
from ._dataterm import DataTerm, Objective, batch_objective, full_objective, held_out
from ._threads import ShardedDataTerm, blas_threads, default_threads, make_objective

__all__ = [
    "DataTerm",
    "Objective",
    "full_objective",
    "batch_objective",
    "held_out",
    "ShardedDataTerm",
    "make_objective",
    "blas_threads",
    "default_threads",
    "ClusterDataTerm",
    "ClusterLost",
    "ClusterError",
    "WorkerLost",
    "connect",
    "local_cluster",
    "ArrayDataTerm",
    "device_dataset",
    "on_accelerator",
]
