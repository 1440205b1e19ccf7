"""Bounce-back coupons (issue 18): a purchase that meets an offer's condition gives the
member a personal coupon for a later purchase."""
