"""AWS's error vocabulary: which codes mean gone, eventual, maybe done, throttled, unreachable or
bad credentials; how to tell them apart (``error_code``, ``is_not_found``, ``maybe_done`` …); and
``to_cloud_error``, which turns any botocore error into a CloudError a person can read (with HINTS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from byoc.errors import CloudError

T = TypeVar("T")

#: Error codes that mean "the thing is already gone" across the services byoc uses.
NOT_FOUND_CODES = frozenset(
    {
        "InvalidVpcID.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidInternetGatewayID.NotFound",
        "InvalidAllocationID.NotFound",
        "InvalidAddress.NotFound",
        "NatGatewayNotFound",
        "InvalidNatGatewayID.NotFound",
        "InvalidRouteTableID.NotFound",
        "InvalidAssociationID.NotFound",
        "InvalidRoute.NotFound",
        "InvalidGroup.NotFound",
        "InvalidPermission.NotFound",
        "InvalidInstanceID.NotFound",
        "InvalidVolume.NotFound",
        "InvalidSnapshot.NotFound",
        "Gateway.NotAttached",
        "NoSuchEntity",
        "NoSuchBucket",
        "ResourceNotFoundException",
        "LoadBalancerNotFound",
        "TargetGroupNotFound",
        "ListenerNotFound",
        "ResourceNotFound",
        "NotFound",
    }
)

#: AWS's eventual-consistency errors: the same call succeeds once AWS catches up.
EVENTUAL_CODES = frozenset(
    {
        "DependencyViolation",
        "InvalidGroup.InUse",
        "InvalidNetworkInterfaceID.NotFound",
        "AuthFailure",
        "InvalidIPAddress.InUse",
        "IncorrectState",
        "ResourceInUse",
        "VolumeInUse",
    }
)

#: Answers to a create whose work AWS may have done anyway (a 5xx, a dropped connection), and the
#: answers of a repeated create that did happen: for these, look for the resource by tag.
MAYBE_DONE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "EntityAlreadyExists",
        "DuplicateTargetGroupName",
        "DuplicateLoadBalancerName",
        "InvalidSubnet.Conflict",
        "InvalidGroup.Duplicate",
        "ResourceAlreadyExistsException",
        "ResourceExistsException",
        "BucketAlreadyOwnedByYou",
    }
)

#: Throttling answers: AWS did nothing, so the SDK may always repeat the call.
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown", "TooManyRequestsException",
     "RequestThrottled", "RequestThrottledException", "ThrottledException", "PriorRequestNotComplete"}
)


#: The botocore errors that mean the request never reached AWS: its endpoint cannot be reached.
UNREACHABLE_ERRORS = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "ProxyConnectionError"})

#: Answers that mean the credentials are missing or not valid: a problem of the run, not of a resource.
CREDENTIAL_CODES = frozenset({
    "NoCredentialsError", "PartialCredentialsError", "ExpiredToken", "ExpiredTokenException",
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidToken",
    "RequestExpired", "InvalidAccessKeyId", "TokenRefreshRequired", "UnauthorizedSSOTokenError",
    "SSOTokenLoadError", "CredentialRetrievalError",
})


def endpoint_of(url: str) -> str:
    """``scheme://host[:port]`` of a request URL: what a person types as AWS_ENDPOINT_URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (a botocore error, or the CloudError made of one) says AWS's endpoint could
    not be reached at all."""
    name = exc.code if isinstance(exc, CloudError) else type(exc).__name__
    return name in UNREACHABLE_ERRORS


def is_run_problem(exc: BaseException) -> bool:
    """Whether ``exc`` is a problem of the whole run (no credentials, bad credentials, AWS not
    reachable) rather than of one resource or kind: reported once, without a resource's name."""
    code = exc.code if isinstance(exc, CloudError) else (error_code(exc) or type(exc).__name__)
    # AuthFailure: EC2's answer to credentials it cannot validate (also an eventual-consistency
    # answer of some writes, never of the reads discovery makes)
    return code in UNREACHABLE_ERRORS or code in CREDENTIAL_CODES or code == "AuthFailure"


def why_unreachable(exc: BaseException) -> str:
    """In a few words, why the endpoint could not be reached: "connection refused", "host name not
    found", "no answer within the connect timeout" …"""
    if type(exc).__name__ == "ConnectTimeoutError":
        return "no answer within the connect timeout"
    if type(exc).__name__ == "ProxyConnectionError":
        return "the proxy cannot be reached"
    cause = getattr(exc, "kwargs", {}).get("error")
    text = f"{type(cause).__name__} {cause} {exc}".lower()
    if any(s in text for s in ("nameresolution", "resolve", "name or service not known", "nodename nor",
                               "getaddrinfo", "gaierror", "no address associated")):
        return "host name not found"
    if "refused" in text:
        return "connection refused"
    if "timed out" in text:
        return "connection timed out"
    if "unreachable" in text:
        return "network unreachable"
    return "no connection"


def unreachable_message(exc: BaseException) -> str:
    url = endpoint_of(str(getattr(exc, "kwargs", {}).get("endpoint_url") or ""))
    return (f"cannot reach AWS at {url or 'its endpoint'} ({why_unreachable(exc)}): check AWS_ENDPOINT_URL, "
            "the network (proxy, VPN, firewall) and the region (aws.region, AWS_REGION)")


def maybe_done(exc: BaseException) -> bool:
    """Whether a failed create may have made its resource anyway (see MAYBE_DONE_CODES)."""
    code = error_code(exc) or getattr(exc, "code", None) or type(exc).__name__
    return code in MAYBE_DONE_CODES


#: What to do next, for the AWS errors users meet most.
HINTS = {
    "DependencyViolation": (
        "Something still uses it and AWS kept refusing for the whole retry period: often a network "
        "interface left by a load balancer, NAT gateway or instance, or a resource made outside byoc "
        "in the same VPC. Find it (EC2 console → Network Interfaces, filtered by the VPC), remove it, "
        "and run the command again"
    ),
    "AccessDenied": (
        "The AWS credentials in use may not do this: check the identity (aws sts get-caller-identity) "
        "and its IAM permissions"
    ),
    "RequestLimitExceeded": "AWS is throttling this account; run again later or lower --parallelism",
    "AddressLimitExceeded": "The account's Elastic IP quota is used up: release unused EIPs or ask AWS "
                            "for more, or use network.nat_gateway: single",
    "NatGatewayLimitExceeded": "The NAT gateway quota of an AZ is used up: use network.nat_gateway: "
                               "single, or ask AWS for more",
    "VpcLimitExceeded": "The region's VPC quota is used up: delete unused VPCs or ask AWS for more",
}


def error_code(exc: BaseException) -> str | None:
    """AWS's error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc)
    return code is not None and (code in NOT_FOUND_CODES or code.endswith(".NotFound"))


def unless_gone(call: Callable[[], T]) -> T | None:
    """``call()``; None when AWS says the thing is not there (already deleted counts as success)."""
    try:
        return call()
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def to_cloud_error(exc: BaseException, address: str | None = None, aws_id: str | None = None) -> CloudError:
    """Wrap a botocore error (or any other) into a CloudError a person can read."""
    if isinstance(exc, CloudError):
        if address and not exc.address:
            exc.address = address
        if aws_id and not exc.aws_id:
            exc.aws_id = aws_id
        return exc
    code = error_code(exc)
    if code is not None:
        msg = getattr(exc, "response", {}).get("Error", {}).get("Message") or str(exc)
        op = getattr(exc, "operation_name", None)
        text = f"{op} failed: {msg}" if op else msg
        hint = HINTS.get(code)
        if hint is None and code in {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}:
            hint = HINTS["AccessDenied"]
        if hint is None and (code in CREDENTIAL_CODES or (code == "AuthFailure" and "credentials" in msg)):
            hint = ("The AWS credentials in use are not valid (expired, revoked or mistyped): renew them "
                    "(`aws sso login`, `aws configure`) or choose others with AWS_PROFILE")
        if hint:
            text = f"{text.rstrip('.')}. {hint}"
        return CloudError(text, address=address, aws_id=aws_id, code=code)
    name = type(exc).__name__
    if name in {"NoCredentialsError", "PartialCredentialsError"}:
        return CloudError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or point AWS_ENDPOINT_URL at the local sandbox (see README)",
            address=address,
            aws_id=aws_id,
            code=name,
        )
    if name in UNREACHABLE_ERRORS:
        return CloudError(unreachable_message(exc), address=address, aws_id=aws_id, code=name)
    if name in {"ReadTimeoutError", "ConnectionClosedError"}:
        return CloudError(f"AWS did not answer: {exc}", address=address, aws_id=aws_id, code=name)
    return CloudError(f"{name}: {exc}", address=address, aws_id=aws_id, code=name)
