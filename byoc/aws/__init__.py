"""The AWS seam: everything byoc knows about talking to AWS, below the resource kinds.

- ``errors``: AWS's error codes and what they mean (gone, eventual, maybe done, throttled,
  unreachable, credentials), ``to_cloud_error`` and the hints a person reads.
- ``calls``: the call recorder (``byoc -v``), SDK log quieting and the SDK's retry handler.
- ``context``: ``AwsContext``, the one I/O seam: clients, memoised reads, retries, waits.
- ``models``: the SDK's data files, loaded once per process and cached between runs.
- ``tags``: the ownership tags, tag helpers and the caller's account id.

The resource kinds (``byoc.resources``), the operations and the S3 state store stand on this
package; it imports only ``byoc.errors`` and ``byoc.model`` of byoc, never ``byoc.resources``.
Nothing here imports boto3 at module load: clients are made lazily.
"""
