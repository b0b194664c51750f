"""What an instance type implies for EBS optimisation, as DescribeInstanceTypes' ``EbsInfo.
EbsOptimizedSupport`` says: ``default`` (always on, no charge), ``supported`` (on request, an hourly
fee) or ``unsupported``. Only previous-generation types are not ``default``; the two short tables
below are AWS's complete lists (tests/test_ec2types.py compares them with moto's copy of AWS's data).
"""

from __future__ import annotations

#: EbsOptimizedSupport "unsupported": asking for EBS optimisation makes RunInstances fail
EBS_UNSUPPORTED = frozenset({
    "c1.medium", "c3.8xlarge", "c3.large", "i2.8xlarge", "m1.medium", "m1.small", "m2.xlarge",
    "m3.large", "m3.medium", "r3.8xlarge", "r3.large", "t1.micro", "t2.2xlarge", "t2.large",
    "t2.medium", "t2.micro", "t2.nano", "t2.small", "t2.xlarge",
})
#: EbsOptimizedSupport "supported": EBS-optimised only when asked (RunInstances EbsOptimized=true)
EBS_ON_REQUEST = frozenset({
    "c1.xlarge", "c3.2xlarge", "c3.4xlarge", "c3.xlarge", "i2.2xlarge", "i2.4xlarge", "i2.xlarge",
    "m1.large", "m1.xlarge", "m2.2xlarge", "m2.4xlarge", "m3.2xlarge", "m3.xlarge", "r3.2xlarge",
    "r3.4xlarge", "r3.xlarge",
})


def ebs_optimized_support(instance_type: str) -> str:
    """``default``, ``supported`` or ``unsupported`` (DescribeInstanceTypes' words)."""
    t = instance_type.lower()
    if t in EBS_UNSUPPORTED:
        return "unsupported"
    return "supported" if t in EBS_ON_REQUEST else "default"


def ebs_optimized(instance_type: str) -> bool:
    """Whether a node of this type is (made) EBS-optimised: every type that supports it."""
    return ebs_optimized_support(instance_type) != "unsupported"
