# terraform-compliance on byoc's plan JSON (tests/test_policy.py): no security group lets the
# internet reach SSH or Proton's ports (HTTP 8123, native TCP 8463, HTTP streaming 3218, metrics 9363).
Feature: Security groups keep SSH and Proton's ports off the internet

  Scenario Outline: No ingress from 0.0.0.0/0 to port <port>
    Given I have AWS Security Group defined
    When it contains ingress
    Then it must not have tcp protocol and port <port> for 0.0.0.0/0

    Examples:
      | port |
      | 22   |
      | 8123 |
      | 8463 |
      | 3218 |
      | 9363 |
