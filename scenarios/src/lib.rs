//! Runbook scenarios.
