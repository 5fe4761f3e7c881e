"""Evaluation: lip-sync tiers (A landmarks, B sync expert, C SyncNet), fidelity, cost, suites and the leaderboard."""
