"""Web rendering: the players' pages, the API docs and the OpenAPI document, with their
templates and static files."""
