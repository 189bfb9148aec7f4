"""A fake Amazon SQS endpoint speaking the AWS JSON 1.0 protocol (X-Amz-Target
AmazonSQS.<Action>), enough for the billing planner: SendMessageBatch. Requests without
a SigV4 Authorization header are rejected as the real service does."""

from __future__ import annotations

import hashlib
import uuid

from tests.fakes.server import FakeProvider, Request, Response

MAX_BATCH_ENTRIES = 10


class FakeSqs(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.route("POST", "/", self._dispatch)

    def _dispatch(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return self._error("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
        action = request.headers.get("x-amz-target", "").removeprefix("AmazonSQS.")
        if action != "SendMessageBatch":
            return self._error("InvalidAction", f"action {action} is not supported by this fake", 400)
        return self._send_batch(request.json())

    def _send_batch(self, body: dict[str, object]) -> Response:
        entries = body.get("Entries")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH_ENTRIES:
            return self._error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "1 to 10 entries are allowed", 400)
        successful = []
        for entry in entries:
            message = entry["MessageBody"]
            self.messages.append(message)
            successful.append(
                {"Id": entry["Id"], "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": hashlib.md5(message.encode()).hexdigest()}
            )
        return Response.json({"Successful": successful, "Failed": []}, headers={"Content-Type": "application/x-amz-json-1.0"})

    @staticmethod
    def _error(code: str, message: str, status: int) -> Response:
        return Response.json({"__type": f"com.amazonaws.sqs#{code}", "message": message}, status)
