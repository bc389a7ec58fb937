FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN DJANGO_SECRET_KEY=collectstatic python manage.py collectstatic --noinput -v0

EXPOSE 8000
# uvicorn, configured and extended by realtime/servers (see README "In production").
CMD ["python", "-m", "paychain.serve", "--host", "0.0.0.0", "--port", "8000"]
