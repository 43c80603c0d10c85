"""A local fake of Klaviyo, Sendlane, eSputnik and a webhook receiver for delivery tests and benchmarks."""

from tests.fakeplatform.records import KlaviyoEvent, Recorded, UpsertedOrder
from tests.fakeplatform.server import FakePlatform
from tests.fakeplatform.webhook import sign as sign_webhook

__all__ = ["FakePlatform", "KlaviyoEvent", "Recorded", "UpsertedOrder", "sign_webhook"]
