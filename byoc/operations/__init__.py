"""Operations on a running cluster that read or act on AWS outside the plan/apply cycle."""
