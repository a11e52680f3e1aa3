from django.urls import path
from orders import views

urlpatterns = [
    path("quotes/<str:sku>", views.create_quote),
    path("health", views.health),
]
