FROM python:3.11-slim

# DEBUG off: the image is for production. Started without DJANGO_SECRET_KEY
# and BROADCAST_API_KEYS it refuses to start, naming them (.env.example).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_DEBUG=false \
    DJANGO_STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
# An unprivileged user, who can read the code but not change it.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin paychain
COPY . .
# The static files (the admin's, the API docs'), served by WhiteNoise from
# DJANGO_STATIC_ROOT. DEBUG on for this build step only: it needs no secret.
RUN DJANGO_DEBUG=true python manage.py collectstatic --noinput -v0

USER paychain
EXPOSE 8000
# uvicorn, configured and extended by realtime/servers (see README "In production").
CMD ["python", "-m", "paychain.serve", "--host", "0.0.0.0", "--port", "8000"]
