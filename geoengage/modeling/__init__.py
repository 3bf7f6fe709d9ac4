"""Windows -> models: sklearn-compatible estimators and subject-grouped cross-validation."""
