"""Orders: the lifecycle of an order from placement to refund."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Contract, Event, Identifier, StrictInt, Text
from schemas.clickstream import Channel, Money
from schemas.personal import FREE_TEXT, PSEUDONYMOUS

PaymentType = Literal["credit_card", "debit_card", "boleto", "voucher", "paypal", "bank_transfer", "cash", "other"]


class OrderItem(Contract):
    product_id: Identifier
    category_id: Identifier | None = None
    quantity: StrictInt = Field(1, ge=1, le=10_000)
    unit_price: Money | None = Field(None, description="Null when the source does not know the price.")


class OrderBase(Event):
    order_id: Identifier
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    amount: Money | None = Field(
        None, description="What this event moves: order total when placed, paid amount, refunded amount."
    )


class OrderPlaced(OrderBase):
    type: Literal["order_placed"]
    items: list[OrderItem] = Field(default_factory=list, max_length=1000)
    freight: Money | None = None
    channel: Channel = "web"
    session_id: Identifier | None = Field(None, json_schema_extra=PSEUDONYMOUS)


class OrderPaid(OrderBase):
    type: Literal["order_paid"]
    payment_type: PaymentType = "other"
    installments: StrictInt | None = Field(None, ge=1, le=120)


class OrderShipped(OrderBase):
    type: Literal["order_shipped"]


class OrderDelivered(OrderBase):
    type: Literal["order_delivered"]


class OrderCancelled(OrderBase):
    type: Literal["order_cancelled"]
    reason: Text | None = Field(None, max_length=512, json_schema_extra=FREE_TEXT)


class OrderRefunded(OrderBase):
    type: Literal["order_refunded"]
    reason: Text | None = Field(None, max_length=512, json_schema_extra=FREE_TEXT)


OrderEvent = Annotated[
    OrderPlaced | OrderPaid | OrderShipped | OrderDelivered | OrderCancelled | OrderRefunded,
    Field(discriminator="type"),
]
