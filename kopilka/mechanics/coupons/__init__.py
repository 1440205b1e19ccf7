"""Coupons: codes that unlock a campaign's discount or points on a receipt."""
