"""OpenAPI for multipart bodies that a route reads as a stream (FastAPI cannot infer those from the signature)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _untitled(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _untitled(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_untitled(v) for v in node]
    return node


def multipart_body(form: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring the route's multipart/form-data body from a model (bytes fields are files)."""
    schema = _untitled(form.model_json_schema())
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
