"""byoc: deploy and run Timeplus Proton clusters in your own AWS account, Terraform-style."""

__version__ = "0.1.0"
