"""Referrals (issue 18): a member's code and link, rewards for both sides once the
friend's first purchase stands, fraud checks and a review queue."""
