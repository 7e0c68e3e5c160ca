"""gunicorn entry point: `gunicorn -c gunicorn.conf.py wsgi:app`.

Job threads are started per worker by gunicorn.conf.py's post_worker_init hook.
"""

from jackdaw import create_app

app = create_app()
