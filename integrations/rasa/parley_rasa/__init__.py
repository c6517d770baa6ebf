"""parley_rasa: a Rasa event broker that publishes to parley.

event_broker:
  type: parley_rasa.ParleyEventBroker
  url: http://localhost:5005
"""

from .broker import ParleyEventBroker
from .config import Config

__all__ = ["ParleyEventBroker", "Config"]
__version__ = "0.1.0"
