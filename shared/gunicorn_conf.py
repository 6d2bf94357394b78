"""gunicorn settings for the Procfile's ``web`` process (``gunicorn wsgi:app -c
shared/gunicorn_conf.py``): the settings and hooks of ``web/gunicorn_conf.py``, the web room's,
read from this path so that the Procfile and deploy scripts naming it keep working."""

from web.gunicorn_conf import *  # noqa: F403 (gunicorn reads this module's names)
