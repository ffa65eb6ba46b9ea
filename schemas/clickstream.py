"""Clickstream: page and product views, searches, cart and wishlist changes, checkout steps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Event, Identifier, StrictFloat, StrictInt, Text, TimeZoneName
from schemas.personal import FREE_TEXT, PSEUDONYMOUS

Channel = Literal["web", "app", "mobile_web", "marketplace", "other"]
Money = Annotated[StrictFloat, Field(ge=0, le=1e9)]
#: A count stored in a ClickHouse UInt32 column: bounded so that no value can fail the insert.
Count = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]


class ClickstreamBase(Event):
    session_id: Identifier | None = Field(None, description="The shop's session id when it has one.",
                                          json_schema_extra=PSEUDONYMOUS)
    channel: Channel = "web"
    device: Literal["desktop", "mobile", "tablet", "other"] | None = None
    page_url: Text | None = Field(None, max_length=2048, json_schema_extra=FREE_TEXT)
    referrer: Text | None = Field(None, max_length=2048, json_schema_extra=FREE_TEXT)
    utm_source: Text | None = Field(None, max_length=256)
    utm_medium: Text | None = Field(None, max_length=256)
    utm_campaign: Text | None = Field(None, max_length=256)
    time_zone: TimeZoneName | None = None


class ProductFields(ClickstreamBase):
    product_id: Identifier
    category_id: Identifier | None = None
    brand: Text | None = Field(None, max_length=256)
    price: Money | None = Field(None, description="Unit price; null when the source does not know it.")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")


class PageView(ClickstreamBase):
    type: Literal["page_view"]


class ProductView(ProductFields):
    type: Literal["product_view"]


class Search(ClickstreamBase):
    type: Literal["search"]
    query: Text = Field(min_length=1, max_length=512, json_schema_extra=FREE_TEXT)
    results: Count | None = None


class AddToCart(ProductFields):
    type: Literal["add_to_cart"]
    quantity: StrictInt = Field(1, ge=1, le=10_000)


class RemoveFromCart(ProductFields):
    type: Literal["remove_from_cart"]
    quantity: StrictInt = Field(1, ge=1, le=10_000)


class AddToWishlist(ProductFields):
    type: Literal["add_to_wishlist"]


class CheckoutStarted(ClickstreamBase):
    type: Literal["checkout_started"]
    cart_value: Money | None = None
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    items: Count | None = None


class Identify(ClickstreamBase):
    """The visitor said who they are (login, sign-up): links ``anonymous_id`` and the identifiers on the
    event to ``customer_id`` (required here). Resolved by the identity stage (streams/identity.py)."""

    type: Literal["identify"]


class Alias(ClickstreamBase):
    """Two known ids are one customer: ``previous_id`` (a customer id) is merged into ``customer_id``."""

    type: Literal["alias"]
    previous_id: Identifier = Field(description="The customer id merged into customer_id.",
                                    json_schema_extra=PSEUDONYMOUS)


ClickstreamEvent = Annotated[
    PageView | ProductView | Search | AddToCart | RemoveFromCart | AddToWishlist | CheckoutStarted | Identify | Alias,
    Field(discriminator="type"),
]
