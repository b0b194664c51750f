"""The contract every AWS resource kind implements: ``ResourceType``.

One subclass per AWS kind, in its own module, registered in ``byoc.resources.REGISTRY``; shared
mechanisms of several kinds live in the ``_*.py`` helper modules next to them. What the kinds use
to talk to AWS (``AwsContext``, error codes, tags) is the seam in ``byoc.aws``. boto3 is used only
in the kinds, the operations, the S3 state store and ``byoc.aws``.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from byoc.aws.tags import ADDRESS_TAG, CLUSTER_TAG, tag_list
from byoc.errors import CloudError
from byoc.model import Companion, Live
from byoc.resources._batch import Batcher, batcher

if TYPE_CHECKING:
    from byoc.aws.context import AwsContext


class ResourceType(ABC):
    """One AWS kind: discover, create, update in place, delete, and what forces replacement.

    Failure rules (after Pulumi's dynamic provider): ``create`` is all-or-nothing from the
    caller's view — if it raises, whatever it made is tagged so discovery finds it; a ``delete``
    that raises means the thing still exists; ``delete`` of something already gone succeeds.
    """

    kind: ClassVar[str]
    service: ClassVar[str]
    #: props whose change cannot be made in place: changing them replaces the resource
    force_new: ClassVar[frozenset[str]] = frozenset()
    #: props whose referent cannot be deleted while this resource refers to it (see KindRules)
    pins: ClassVar[frozenset[str]] = frozenset()
    #: props compared by sha256 only (discovery reports ``sha256:<hex>``; see KindRules)
    hashed: ClassVar[frozenset[str]] = frozenset()
    #: the kind holds user data (bucket, data volume): never deleted or replaced without a flag
    holds_data: ClassVar[bool] = False
    #: the kind can snapshot what it holds before deletion (``snapshot``)
    snapshots: ClassVar[bool] = False
    #: rough seconds one create and one delete take in AWS, waits included: a scheduling hint
    #: (the executor starts first what has the longest road ahead), never a timeout
    seconds: ClassVar[tuple[float, float]] = (1.0, 1.0)

    @abstractmethod
    def discover(self, ctx: AwsContext) -> list[Live]:
        """Every resource of this kind owned by ``ctx.cluster``, in one paginated, tag-filtered
        describe where AWS allows it. Props are normalised to the blueprint's shape."""

    @abstractmethod
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        """Create with tags in the create call (ClientToken where offered) and wait until usable."""

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        """Change the ``changed`` props in place; never called for ``force_new`` props."""
        raise NotImplementedError(f"{self.kind} has no in-place update")

    @abstractmethod
    def delete(self, ctx: AwsContext, live: Live) -> None:
        """Delete and wait until gone; success if already gone."""

    def prepare_delete(self, ctx: AwsContext, live: Live) -> tuple[str, ...]:
        """Undo what would make AWS refuse the delete (a load balancer's deletion protection),
        just before it; returns what was done, one line each, for the user to see. Safe to run
        again: a run stopped between this and the delete repeats it (then nothing is left to do)."""
        return ()

    def snapshot(self, ctx: AwsContext, live: Live) -> str:
        """Take a final snapshot of what ``live`` holds, wait until it is complete, return its id."""
        raise NotImplementedError(f"{self.kind} cannot be snapshotted")

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """This kind's values (props plus known attrs) in the Terraform AWS provider 5.100
        schema's shape for ``self.kind``: attribute names, blocks as lists of objects, sets as
        lists, JSON documents as strings. Values that are UNKNOWN stay UNKNOWN (the plan renders
        them as after_unknown)."""
        return dict(values)

    def provider_companions(self, values: Mapping[str, Any], aws_id: str | None) -> list[Companion]:
        """The provider's separate resources that this kind's ``values`` hold inline (a bucket's
        public access block), shown beside it in the plan JSON; only those whose props are in
        ``values`` (a drift report holds a few props only). ``aws_id``: the owner's id, if it exists."""
        return []

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """Look before create: the resource already owned under ``address``, if any. One discovery
        answers the finds of this kind made at the same moment (a saved plan's thirty alarms: a
        few discoveries, not thirty), each from a discovery that started after it asked."""
        def look(addresses: list[str]) -> dict[str, Live]:
            wanted, out = set(addresses), dict[str, Live]()
            for live in self.looked_at(ctx):
                if live.address in wanted:
                    out.setdefault(live.address, live)
            return out

        if not hasattr(ctx, "once"):  # run without an AWS context (the engine's unit tests): alone
            return look([address]).get(address)
        return batcher(ctx, f"find:{self.kind}", lambda: Batcher(look, size=sys.maxsize)).get(address)

    def looked_at(self, ctx: AwsContext) -> list[Live]:
        """What the default ``find`` reads, fresh: the discovery, unless the kind reads less."""
        return self.discover(ctx)

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        """The resource with AWS id ``aws_id``, normalised like discovery, if the cluster owns it
        (``byoc import`` calls ``claim`` first)."""
        return next((live for live in self.discover(ctx) if live.id == aws_id), None)

    def claim(self, ctx: AwsContext, aws_id: str, address: str) -> None:
        """Tag ``aws_id`` as the cluster's ``address`` so discovery finds it there (``byoc import``,
        ``byoc state mv``). EC2 kinds tag in place; others say how to do it by hand."""
        if self.service == "ec2" and ":" not in aws_id:
            ctx.client("ec2").create_tags(
                Resources=[aws_id], Tags=tag_list({CLUSTER_TAG: ctx.cluster, ADDRESS_TAG: address}))
            return
        raise CloudError(
            f"byoc cannot tag a {self.kind} for you: add the tags {CLUSTER_TAG}={ctx.cluster} and "
            f"{ADDRESS_TAG}={address} to it (console, or `aws resourcegroupstaggingapi tag-resources`), "
            "then run the command again",
            address=address, aws_id=aws_id, code="NotClaimable",
        )
