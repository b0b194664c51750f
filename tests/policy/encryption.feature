# terraform-compliance on byoc's plan JSON (tests/test_policy.py): data at rest is encrypted.
Feature: Data at rest is encrypted

  Scenario: EBS data volumes are encrypted
    Given I have aws_ebs_volume defined
    Then it must contain encrypted
    And its value must be true

  Scenario: Instance root volumes are encrypted
    Given I have aws_instance defined
    Then it must contain root_block_device
    And it must contain encrypted
    And its value must be true

  Scenario: Buckets encrypt objects by default
    Given I have aws_s3_bucket defined
    Then it must contain server_side_encryption_configuration
