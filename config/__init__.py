"""The Django project: the design card's ``platform/`` (README: why it is named ``config``)."""

from config.celery import app as celery_app

__all__ = ("celery_app",)
