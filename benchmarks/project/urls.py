"""The app mounted where pi-sdk-js expects it."""

from django.urls import include, path

urlpatterns = [path("pi_payment/", include("django_pi_payments.urls"))]
