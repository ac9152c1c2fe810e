"""`builtin:transactions`: a seeded synthetic card-transaction stream with labelled fraud.

Legitimate traffic
    Customers live in one of a dozen cities (home coordinates), have their own spending
    level (log-normal amounts scaled per merchant category), daily rate, favourite
    categories, active hours, one card (chip / contactless at points of sale) and their
    own phone and browser for online shopping. Merchants have a category, a city and a
    channel (point of sale or online). About one customer in six takes a trip to another
    city, so a far-away purchase is not fraud by itself. A few legitimate purchases use
    a new device or the magnetic stripe.

Fraud patterns (each row labelled `is_fraud` and named in `fraud_pattern`)
    card_testing          3-5 tiny online "probe" charges (0.5-3) minutes apart from a new
                          device, then one large purchase (electronics, jewellery, gift cards).
    account_takeover      a burst of 3-7 online purchases within two hours, mostly at night,
                          from a new device, at amounts far above the customer's habit.
    compromised_merchant  an online shop is breached: for a week, stolen cards are charged
                          there in a narrow amount band (45-60) from new devices.
    impossible_travel     a cloned card swiped (magnetic stripe) at a point of sale over
                          1,000 km from the customer's previous purchase an hour or two earlier.

Each row also carries what an issuer's feature store computes from the customer's own
past (never their future): minutes since the previous transaction, distance from home
and from the previous transaction, implied travel speed, transactions in the past hour,
amount relative to the running mean, and whether the device is new for the customer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from domains.finance.config import TransactionsConfig

TARGET = "is_fraud"
START = pd.Timestamp("2026-01-01")

# category -> (median amount, share online)
CATEGORIES = {
    "grocery": (40.0, 0.1),
    "restaurant": (35.0, 0.05),
    "fuel": (50.0, 0.0),
    "travel": (380.0, 0.6),
    "electronics": (220.0, 0.6),
    "online_retail": (55.0, 1.0),
    "entertainment": (30.0, 0.5),
    "pharmacy": (25.0, 0.1),
    "clothing": (70.0, 0.4),
    "utilities": (90.0, 0.9),
    "jewelry": (300.0, 0.2),
    "gift_cards": (100.0, 0.7),
}
CITIES = np.array(
    [
        (52.52, 13.40), (48.14, 11.58), (50.11, 8.68), (53.55, 9.99), (48.86, 2.35),
        (45.46, 9.19), (41.39, 2.17), (40.42, -3.70), (51.51, -0.13), (52.37, 4.90),
        (59.33, 18.07), (38.72, -9.14),
    ]
)  # fmt: skip
PATTERN_SHARES = {
    "card_testing": 0.3,
    "account_takeover": 0.3,
    "compromised_merchant": 0.2,
    "impossible_travel": 0.2,
}
DAY = 86400.0


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, float)) for v in (lat1, lon1, lat2, lon2))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 6371.0 * 2 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _city_point(rng, city: int, spread: float = 0.08) -> tuple[float, float]:
    lat, lon = CITIES[city]
    return lat + rng.normal(0, spread), lon + rng.normal(0, spread)


class _Stream:
    """Customers, merchants and the rows generated so far."""

    def __init__(self, config: TransactionsConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.categories = list(CATEGORIES)
        self.rows: list[tuple] = []
        self._make_merchants()
        self._make_customers()

    def _make_merchants(self) -> None:
        rng, count = self.rng, self.config.merchants
        self.m_category = rng.choice(len(self.categories), count)
        online_share = np.array([CATEGORIES[c][1] for c in self.categories])
        self.m_online = rng.random(count) < online_share[self.m_category]
        self.m_city = rng.integers(0, len(CITIES), count)
        self.m_point = np.array([_city_point(rng, c) for c in self.m_city])
        # Every category needs an online shop and a shop in each city it is sold in.
        self.by_key: dict[tuple[int, bool, int], np.ndarray] = {}
        for index in range(count):
            key = (
                self.m_category[index],
                bool(self.m_online[index]),
                -1 if self.m_online[index] else self.m_city[index],
            )
            self.by_key.setdefault(key, []).append(index)  # type: ignore[arg-type]
        self.by_key = {k: np.array(v) for k, v in self.by_key.items()}

    def _make_customers(self) -> None:
        rng, count = self.rng, self.config.customers
        self.c_city = rng.integers(0, len(CITIES), count)
        self.c_home = np.array([_city_point(rng, c, 0.05) for c in self.c_city])
        self.c_level = rng.normal(0.0, 0.35, count)
        self.c_rate = np.clip(rng.gamma(2.0, 0.5, count), 0.15, 4.0)
        self.c_prefs = rng.dirichlet(np.full(len(self.categories), 0.6), count)
        self.c_peak = rng.uniform(10, 20, count)

    def merchant(self, category: int, online: bool, city: int) -> int:
        key = (category, online, -1 if online else city)
        pool = self.by_key.get(key)
        if pool is None:  # no such shop: any shop of the category and channel
            pool = np.flatnonzero((self.m_category == category) & (self.m_online == online))
        if len(pool) == 0:
            pool = np.flatnonzero(self.m_category == category)
        return int(self.rng.choice(pool))

    def add(self, customer, time, merchant, amount, device_type, device_id, point, pattern):
        self.rows.append(
            (
                customer,
                time,
                merchant,
                round(float(amount), 2),
                device_type,
                device_id,
                point[0],
                point[1],
                pattern,
            )
        )

    # === Legitimate traffic ===
    def legitimate(self) -> None:
        rng, days = self.rng, self.config.days
        for c in range(self.config.customers):
            n = rng.poisson(self.c_rate[c] * days)
            day = rng.integers(0, days, n)
            hour = np.clip(rng.normal(self.c_peak[c], 3.5, n), 6, 23.9)
            times = np.sort(day * DAY + hour * 3600 + rng.uniform(0, 60, n))
            trip = None
            if rng.random() < 0.17 and days > 6:
                start = rng.integers(0, days - 5) * DAY
                other = (self.c_city[c] + rng.integers(1, len(CITIES))) % len(CITIES)
                trip = (start, start + rng.integers(2, 6) * DAY, other)
            for t in times:
                category = rng.choice(len(self.categories), p=self.c_prefs[c])
                online = rng.random() < CATEGORIES[self.categories[category]][1]
                city = self.c_city[c]
                if trip and trip[0] <= t < trip[1]:
                    city = trip[2]
                m = self.merchant(category, online, city)
                median = CATEGORIES[self.categories[category]][0]
                amount = rng.lognormal(np.log(median) + self.c_level[c], 0.6)
                if online:
                    device_type = "mobile_app" if rng.random() < 0.6 else "web_browser"
                    device_id = (
                        f"{device_type}-{c}"
                        if rng.random() > 0.02
                        else f"new-{c}-{rng.integers(1e9)}"
                    )
                    point = self.c_home[c] if city == self.c_city[c] else _city_point(rng, city)
                else:
                    device_type = (
                        "magstripe"
                        if rng.random() < 0.01
                        else ("chip" if rng.random() < 0.5 else "contactless")
                    )
                    device_id = f"card-{c}"
                    point = self.m_point[m]
                self.add(c, t, m, amount, device_type, device_id, point, "none")

    # === Fraud ===
    def _far_city(self, c: int) -> int:
        home = CITIES[self.c_city[c]]
        far = [i for i, p in enumerate(CITIES) if haversine_km(*home, *p) > 1000]
        return int(self.rng.choice(far)) if far else int((self.c_city[c] + 1) % len(CITIES))

    def _online_point(self, c: int) -> np.ndarray:
        # Half the fraudsters route through a proxy in the victim's home city.
        if self.rng.random() < 0.5:
            return self.c_home[c] + self.rng.normal(0, 0.02, 2)
        return np.array(_city_point(self.rng, self._far_city(c)))

    def card_testing(self) -> int:
        rng = self.rng
        c = int(rng.integers(self.config.customers))
        t = rng.uniform(0, self.config.days * DAY)
        device = f"fraud-{rng.integers(1e9)}"
        point = self._online_point(c)
        probes = int(rng.integers(3, 6))
        for _ in range(probes):
            t += rng.uniform(60, 900)
            category = self.categories.index(
                rng.choice(["online_retail", "gift_cards", "entertainment"])
            )
            self.add(
                c,
                t,
                self.merchant(category, True, 0),
                rng.uniform(0.5, 3.0),
                "web_browser",
                device,
                point,
                "card_testing",
            )
        t += rng.uniform(300, 3600)
        category = self.categories.index(rng.choice(["electronics", "jewelry", "gift_cards"]))
        self.add(
            c,
            t,
            self.merchant(category, True, 0),
            rng.lognormal(np.log(900), 0.4),
            "web_browser",
            device,
            point,
            "card_testing",
        )
        return probes + 1

    def account_takeover(self) -> int:
        rng = self.rng
        c = int(rng.integers(self.config.customers))
        day = rng.integers(0, self.config.days)
        t = day * DAY + (rng.uniform(0, 5) if rng.random() < 0.7 else rng.uniform(5, 24)) * 3600
        device = f"fraud-{rng.integers(1e9)}"
        point = self._online_point(c)
        burst = int(rng.integers(3, 8))
        for _ in range(burst):
            t += rng.uniform(120, 1500)
            category = self.categories.index(
                rng.choice(["electronics", "gift_cards", "travel", "online_retail"])
            )
            amount = rng.lognormal(np.log(300) + self.c_level[c], 0.5)
            self.add(
                c,
                t,
                self.merchant(category, True, 0),
                amount,
                rng.choice(["web_browser", "mobile_app"]),
                device,
                point,
                "account_takeover",
            )
        return burst

    def compromised_merchant(self, merchant: int, window: tuple[float, float]) -> int:
        rng = self.rng
        c = int(rng.integers(self.config.customers))
        t = rng.uniform(*window)
        device = f"fraud-{rng.integers(1e9)}"
        self.add(
            c,
            t,
            merchant,
            rng.uniform(45, 60),
            "web_browser",
            device,
            self._online_point(c),
            "compromised_merchant",
        )
        return 1

    def impossible_travel(self) -> int:
        rng = self.rng
        c = int(rng.integers(self.config.customers))
        t = rng.uniform(DAY, self.config.days * DAY)
        home_shop = self.merchant(self.categories.index("grocery"), False, self.c_city[c])
        self.add(
            c,
            t,
            home_shop,
            rng.lognormal(np.log(40), 0.5),
            "chip",
            f"card-{c}",
            self.m_point[home_shop],
            "none",
        )
        city = self._far_city(c)
        count = int(rng.integers(1, 4))
        for _ in range(count):
            t += rng.uniform(1800, 7200)
            category = self.categories.index(
                rng.choice(["electronics", "jewelry", "clothing", "fuel"])
            )
            m = self.merchant(category, False, city)
            self.add(
                c,
                t,
                m,
                rng.lognormal(np.log(200), 0.6),
                "magstripe",
                f"card-{c}",
                self.m_point[m],
                "impossible_travel",
            )
        return count

    def fraud(self, legitimate_rows: int) -> None:
        rate = self.config.fraud_rate
        wanted = {
            name: share * rate * legitimate_rows / (1 - rate)
            for name, share in PATTERN_SHARES.items()
        }
        made = dict.fromkeys(wanted, 0)
        shops = np.flatnonzero(
            self.m_online & (self.m_category == self.categories.index("online_retail"))
        )
        shop = (
            int(self.rng.choice(shops))
            if len(shops)
            else int(self.rng.integers(self.config.merchants))
        )
        start = self.rng.uniform(0, max(1.0, self.config.days - 7)) * DAY
        window = (start, start + 7 * DAY)
        for name in PATTERN_SHARES:
            while made[name] < max(1.0, wanted[name]):
                if name == "compromised_merchant":
                    made[name] += self.compromised_merchant(shop, window)
                else:
                    made[name] += getattr(self, name)()


def _history_features(frame: pd.DataFrame, homes: np.ndarray) -> pd.DataFrame:
    """Per-customer features from each customer's past rows only (frame sorted by customer, time)."""
    customer = frame["customer"].to_numpy()
    time = frame["time"].to_numpy()
    lat, lon = frame["lat"].to_numpy(), frame["lon"].to_numpy()
    first = np.r_[True, customer[1:] != customer[:-1]]
    gap = np.r_[np.inf, np.diff(time)]
    gap[first] = np.inf
    prev_lat, prev_lon = np.r_[lat[:1], lat[:-1]], np.r_[lon[:1], lon[:-1]]
    km_prev = haversine_km(prev_lat, prev_lon, lat, lon)
    km_prev[first] = 0.0
    hours = np.maximum(gap / 3600.0, 1.0 / 60)
    # One key per (customer, time) so a search never crosses into another customer.
    key = customer.astype(np.float64) * (1e3 * DAY) + time
    in_last_hour = np.arange(len(key)) - np.searchsorted(key, key - 3600.0, side="left")
    amounts = frame["amount"].to_numpy()
    grouped = frame.groupby("customer", sort=False)["amount"]
    previous_sum = grouped.cumsum().to_numpy() - amounts
    previous_count = grouped.cumcount().to_numpy()
    running_mean = np.where(
        previous_count > 0, previous_sum / np.maximum(previous_count, 1), amounts
    )
    seen = frame.groupby(["customer", "device_id"], sort=False).cumcount().to_numpy()
    return pd.DataFrame(
        {
            "hour": ((time % DAY) // 3600).astype("int64"),
            "distance_from_home_km": haversine_km(
                homes[customer, 0], homes[customer, 1], lat, lon
            ).round(1),
            "minutes_since_last": np.minimum(gap / 60.0, 43200.0).round(1),
            "km_from_last": km_prev.round(1),
            "speed_kmh": np.where(first, 0.0, km_prev / hours).round(1),
            "txn_count_1h": in_last_hour.astype("int64"),
            "amount_to_avg": (amounts / np.maximum(running_mean, 0.01)).round(3),
            "new_device": ((seen == 0) & ~first).astype("int64"),
        },
        index=frame.index,
    )


def generate_transactions(config: TransactionsConfig | None = None) -> pd.DataFrame:
    """The stream as one table, in time order (columns documented in the module docstring)."""
    config = config or TransactionsConfig()
    stream = _Stream(config)
    stream.legitimate()
    stream.fraud(len(stream.rows))
    frame = pd.DataFrame(
        stream.rows,
        columns=[
            "customer",
            "time",
            "merchant",
            "amount",
            "device_type",
            "device_id",
            "lat",
            "lon",
            "fraud_pattern",
        ],
    )
    frame = frame.sort_values(["customer", "time"], kind="stable").reset_index(drop=True)
    history = _history_features(frame, stream.c_home)
    merchant = frame["merchant"].to_numpy()
    out = pd.DataFrame(
        {
            "transaction_id": "",
            "customer_id": [f"C{c:05d}" for c in frame["customer"]],
            "timestamp": (START + pd.to_timedelta(frame["time"], unit="s")).dt.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "amount": frame["amount"],
            "merchant_id": [f"M{m:04d}" for m in merchant],
            "merchant_category": np.array(stream.categories)[stream.m_category[merchant]],
            "channel": np.where(stream.m_online[merchant], "online", "pos"),
            "device_type": frame["device_type"],
            **history,
            TARGET: (frame["fraud_pattern"] != "none").astype("int64"),
            "fraud_pattern": frame["fraud_pattern"],
        }
    )
    out = out.iloc[np.argsort(frame["time"].to_numpy(), kind="stable")].reset_index(drop=True)
    out["transaction_id"] = [f"T{i:07d}" for i in range(len(out))]
    return out


# The declared schema of the generated table (the rest is inferred as numeric/categorical).
SCHEMA = {
    "transaction_id": "id",
    "customer_id": "id",
    "timestamp": "time",
    "fraud_pattern": "ignore",
    TARGET: "target",
    "merchant_id": "categorical",
    "txn_count_1h": "numeric",  # a count (0-6), not a code: no one-hot by value
}
