"""Who writes access logs into the log bucket, as a pure table: S3 server access logging's service
principal, and per region the Elastic Load Balancing account AWS documents for regions opened
before August 2022 (newer regions use ELB's log-delivery service principal instead)."""

from __future__ import annotations

#: S3 server access logging delivers as this service principal
S3_LOGGING_SERVICE = "logging.s3.amazonaws.com"
#: application load balancers deliver access logs as this principal in regions not in ELB_ACCOUNTS
ELB_LOG_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
#: network load balancers deliver (TLS listeners' access logs) through CloudWatch's log delivery
NLB_LOG_SERVICE = "delivery.logs.amazonaws.com"

#: region → the Elastic Load Balancing account that writes a load balancer's access logs there
#: (AWS docs, "Enable access logs for your Application Load Balancer", step 2: regions available
#: before August 2022)
ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-south-1": "718504428378",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-southeast-3": "589379963580",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-south-1": "635631232127",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993",
    "cn-northwest-1": "037604701340",
}


def elb_log_principal(region: str, partition: str) -> dict[str, list[str]]:
    """The principal an application load balancer's access logs arrive from in ``region``."""
    account = ELB_ACCOUNTS.get(region)
    if account is None:
        return {"Service": [ELB_LOG_SERVICE]}
    return {"AWS": [f"arn:{partition}:iam::{account}:root"]}
