"""AWS's errors as the JSON 1.0 protocol sends them: an HTTP status and
``{"__type": "<namespace>#<Code>", "message": ...}``, which botocore turns into a
``ClientError`` with that code.

ApiError                                 status  where
 ├── ValidationException                 400     a malformed request (coral's namespace)
 ├── ResourceNotFoundException           400     no such stream, table or shard
 ├── TrimmedDataAccessException          400     a position older than the trim horizon
 ├── ExpiredIteratorException            400     an iterator older than its time to live
 ├── LimitExceededException              400     too many readers, DescribeStream rate, Limit > 1000
 ├── ThrottlingException                 400     DescribeStream rate (when configured so)
 ├── ProvisionedThroughputExceededException 400  injected throttling of a DynamoDB table
 └── InternalServerError                 500
"""

from __future__ import annotations

import orjson

DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810"
_NAMESPACES = {
    "ValidationException": "com.amazon.coral.validate",
    "ThrottlingException": "com.amazon.coral.availability",
    "SerializationException": "com.amazon.coral.service",
    "UnknownOperationException": "com.amazon.coral.service",
}


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> bytes:
        namespace = _NAMESPACES.get(self.code, DYNAMODB_NAMESPACE)
        return orjson.dumps({"__type": f"{namespace}#{self.code}", "message": self.message})


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"Requested resource not found: {message}")


def limit_exceeded(message: str) -> ApiError:
    return ApiError("LimitExceededException", message)


def trimmed() -> ApiError:
    return ApiError(
        "TrimmedDataAccessException", "The data you are trying to access has been trimmed."
    )


def throughput_exceeded() -> ApiError:
    return ApiError(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    )


def internal(message: str = "Internal server error") -> ApiError:
    return ApiError("InternalServerError", message, status=500)
