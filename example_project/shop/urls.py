"""URLs of the shop's pages and its one JSON endpoint."""

from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("orders/", views.order_list, name="orders"),
    path("orders/new", views.create_order, name="create_order"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
]
