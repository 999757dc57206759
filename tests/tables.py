"""The DynamoDB table most tests and benchmarks use: hash key ``pk`` (S), range key ``sk`` (N)."""

from __future__ import annotations

from typing import Any

NEW_AND_OLD_IMAGES = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def create_pk_sk_table(dynamodb: Any, name: str, *, stream: bool = True) -> None:
    """Create ``name`` on-demand; ``stream=False`` leaves the stream off (enable it later)."""
    extra: dict[str, Any] = {"StreamSpecification": NEW_AND_OLD_IMAGES} if stream else {}
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
