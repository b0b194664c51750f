# terraform-compliance on byoc's plan JSON (tests/test_policy.py): buckets block public access,
# through the provider's aws_s3_bucket_public_access_block beside each bucket.
Feature: Buckets block every kind of public access

  Scenario: Every bucket has a public access block
    Given I have aws_s3_bucket defined
    Then it must have "aws_s3_bucket_public_access_block" referenced

  Scenario Outline: The public access block sets <flag>
    Given I have aws_s3_bucket_public_access_block defined
    Then it must contain <flag>
    And its value must be true

    Examples:
      | flag                    |
      | block_public_acls       |
      | block_public_policy     |
      | ignore_public_acls      |
      | restrict_public_buckets |
