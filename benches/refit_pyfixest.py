# Run: medsim generate --out panel.csv && python benches/refit_pyfixest.py  (needs pip install pyfixest)
# Refit-per-replicate baseline: pairs cluster bootstrap by refitting the three
# equations with pyfixest on each resampled panel (what users do today).
import time, numpy as np, pandas as pd, pyfixest as pf, warnings
warnings.filterwarnings("ignore")
df = pd.read_csv("panel.csv")
ctrl = "ln_gdp + industry + fdi + urban + gov + ln_pop_density"
cities = df["city"].unique()
groups = {c: g for c, g in df.groupby("city")}
rng = np.random.default_rng(1)
B = 30
for _ in range(2):
    pf.feols(f"agglom ~ dei + {ctrl} | city + year", data=df)
t0 = time.perf_counter()
for b in range(B):
    draw = rng.choice(cities, size=len(cities), replace=True)
    parts = []
    for k, c in enumerate(draw):
        g = groups[c].copy(); g["uid"] = k; parts.append(g)
    d = pd.concat(parts)
    a = pf.feols(f"agglom ~ dei + {ctrl} | uid + year", data=d).coef()["dei"]
    o = pf.feols(f"log_ci ~ dei + agglom + {ctrl} | uid + year", data=d).coef()
    c = pf.feols(f"log_ci ~ dei + {ctrl} | uid + year", data=d).coef()["dei"]
dt = time.perf_counter() - t0
print(f"pyfixest refit: {B} replicates in {dt:.2f} s = {B/dt:.1f} replicates/s")
