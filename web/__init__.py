"""The web process's room: gunicorn's settings (``gunicorn_conf``; the Procfile names it through
``shared/gunicorn_conf.py``), its worker class (``webworker``: the connection limits) and the
admin CLI (``cli``: ``flask --app wsgi ...``). The app itself is ``wsgi.py``; the players' pages
and accounts are ``shared/web/``; docs/DESIGN.md."""
