"""Customer image routes: fetch an image from a URL, list, show and delete images."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, request_body, route
from chalicelib.api.schema import Field, Schema
from chalicelib.images import service
from chalicelib.images.urls import MAX_URL_LENGTH

blueprint = Blueprint(__name__)

FETCH_IMAGE = Schema(
    "FetchImage",
    (
        Field("region", max_length=64, description="Region id from /v1/catalog"),
        Field("name", max_length=service.MAX_NAME_LENGTH, description="A label for the image"),
        Field("url", max_length=MAX_URL_LENGTH, description="http or https URL of a public disk image"),
    ),
)


@route(blueprint, "/v1/images", ["POST"], body=FETCH_IMAGE, status=202)
def fetch_image() -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    image = service.fetch_image(account, body["region"], body["name"], body["url"])
    return json_response(service.image_json(image), 202)


@route(blueprint, "/v1/images", ["GET"])
def list_images() -> object:
    account = current_account(blueprint.current_request)
    service.refresh_pending_images(account.account_id)
    return json_response({"images": [service.image_json(image) for image in service.list_images(account.account_id)]})


@route(blueprint, "/v1/images/{image_id}", ["GET"])
def get_image(image_id: str) -> object:
    account = current_account(blueprint.current_request)
    image = service.get_image(account.account_id, image_id)
    service.refresh_pending_images(account.account_id, [image])
    return json_response(service.image_json(image))


@route(blueprint, "/v1/images/{image_id}", ["DELETE"], status=(200, 202))
def delete_image(image_id: str) -> object:
    account = current_account(blueprint.current_request)
    image = service.delete_image(service.get_image(account.account_id, image_id))
    return json_response(service.image_json(image), 202 if image.state == "deleting" else 200)
