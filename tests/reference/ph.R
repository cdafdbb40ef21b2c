# Reference values for regen's semiparametric proportional-hazards model (regen.fit_ph) and
# its log-rank-type score test (regen.logrank_test), computed with base R's glm and the
# survival package (coxph, survdiff, survfit).
#
# Run:  Rscript tests/reference/ph.R   (the script finds its own folder, so any working
# directory works; `cd tests/reference && Rscript ph.R` is the same).
#
# The model ------------------------------------------------------------------------------
# Right-censored data: an event at t is read as the interval (t-, t], where t- is the
# previous distinct event time; a censored time c is (c, inf).  This is the grouped-
# continuous PH model (Prentice & Gloeckler 1978) with one hazard parameter per distinct
# event time tau_1 < ... < tau_K:
#     P(T > tau_k | T > tau_{k-1}, x) = exp(-exp(alpha_k + x'b)),
#     S(tau_k | x) = exp(-sum_{j <= k} exp(alpha_j + x'b)).
# It is exactly a binomial GLM with complementary log-log link on person-period data:
#   for every event time tau_k, every subject with time >= tau_k is at risk (a subject
#   censored at exactly tau_k IS at risk at tau_k and does not fail there), with response
#   y = 1 if the subject's event is at tau_k;
#   glm(y ~ 0 + factor(tau) + x + age + group, family = binomial(link = "cloglog")).
# Its log-likelihood equals the interval likelihood
#     sum_events log{S(t- | x) - S(t | x)} + sum_censored log S(c | x),
# which the script recomputes per subject from the fitted alpha and b (check
# interval_loglik_minus_glm).  The null model (time factor only) has h_k = d_k / n_k, so its
# log-likelihood is sum_k [d_k log h_k + (n_k - d_k) log(1 - h_k)], with n_k, d_k taken from
# survfit's Kaplan-Meier risk sets (check null_loglik_km_minus_glm).
#
# Datasets (written by this script with set.seed, then read back; all fits use the CSVs) ---
#   ph_noties_input.csv  id,time,status,group,x,age   n = 150, times with 4 decimals, all 150
#                        times distinct (no ties among event times, none between an event and
#                        a censoring time), ~25% censored, the largest time censored.
#   ph_ties_input.csv    id,time,status,group,x,age   n = 300, whole days 1..120 (many ties,
#                        also events and censorings on the same day), ~30% censored,
#                        the largest time censored (no event on that day).
# Truth: log HR 0.5 for x, 0.02 per year of age, group b +0.3, group c -0.4 (reference a);
# Weibull baseline.  group is a string with levels a, b, c; x is 0/1; age has 1 decimal.
# Each dataset is drawn with set.seed(seed0 + attempt) for attempt = 0, 1, ... until the
# conditions above hold; the attempt used is printed and recorded (data/seed).
#
# Outputs --------------------------------------------------------------------------------
#   ph_values.csv    dataset,method,quantity,term,value  (long format, 15 significant digits)
#   ph_versions.txt  R and survival versions
# Terms use regen's formula style: x, age, group[T.b], group[T.c].  See README.md for the
# full list of methods and quantities.

suppressPackageStartupMessages(library(survival))

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
out_dir <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()

versions <- c(R.version.string,
              paste("survival", as.character(packageVersion("survival"))))
cat(versions, sep = "\n")
RNGkind("Mersenne-Twister", "Inversion", "Rejection")

fmt <- function(x, digits = 15) {
  out <- ifelse(is.na(x), "NA", ifelse(x > 0, "inf", "-inf"))
  ok <- is.finite(x)
  out[ok] <- trimws(formatC(x[ok], digits = digits, format = "g"))
  out
}
write_table <- function(df, file) {
  write.csv(df, file.path(out_dir, file), row.names = FALSE, quote = FALSE, na = "")
}
lin_pred_truth <- function(d) {
  0.5 * d$x + 0.02 * (d$age - 55) + 0.3 * (d$group == "b") - 0.4 * (d$group == "c")
}
covariates <- function(n) {
  data.frame(group = sample(c("a", "b", "c"), n, replace = TRUE),
             x = rbinom(n, 1, 0.5),
             age = round(runif(n, 30, 80), 1),
             stringsAsFactors = FALSE)
}

# ---------------------------------------------------------------------------------------
# Dataset noties: continuous times, 4 decimals, all distinct.
# ---------------------------------------------------------------------------------------
draw_noties <- function(seed) {
  set.seed(seed)
  n <- 150
  d <- covariates(n)
  t <- 5 * (rexp(n) * exp(-lin_pred_truth(d)))^(1 / 1.5)   # Weibull, H0(t) = (t/5)^1.5
  cens <- runif(n, 0, 17)                                   # uniform censoring
  time <- round(pmin(t, cens), 4)
  status <- as.integer(t <= cens)
  ok <- length(unique(time)) == n && min(time) > 0 && status[which.max(time)] == 0 &&
    abs(mean(status == 0) - 0.25) <= 0.03
  list(ok = ok, data = data.frame(id = seq_len(n), time = time, status = status, d))
}

# ---------------------------------------------------------------------------------------
# Dataset ties: whole days 1..120.  The event is recorded on day ceiling(T), i.e. in
# (day - 1, day]; a subject followed up to day C (dropout day, administratively 120) with
# T > C is censored at C.  ceiling(T) <= C whenever T <= C, so every event day is a day on
# which the subject was still under follow-up.
# ---------------------------------------------------------------------------------------
draw_ties <- function(seed) {
  set.seed(seed)
  n <- 300
  d <- covariates(n)
  t <- 60 * (rexp(n) * exp(-lin_pred_truth(d)))^(1 / 1.3)  # Weibull, H0(t) = (t/60)^1.3
  cens <- pmin(sample.int(170, n, replace = TRUE), 120)
  status <- as.integer(t <= cens)
  time <- ifelse(status == 1, ceiling(t), cens)
  ok <- all(status[time == max(time)] == 0) && min(time) >= 1 &&
    abs(mean(status == 0) - 0.30) <= 0.03
  list(ok = ok, data = data.frame(id = seq_len(n), time = time, status = status, d))
}

draw_until_ok <- function(draw, seed0) {
  for (attempt in 0:999) {
    res <- draw(seed0 + attempt)
    if (res$ok) return(list(data = res$data, seed = seed0 + attempt))
  }
  stop("no acceptable draw")
}
noties <- draw_until_ok(draw_noties, 51000)
ties <- draw_until_ok(draw_ties, 52000)

write_input <- function(d, file, time_fmt) {
  write_table(data.frame(id = d$id, time = sprintf(time_fmt, d$time), status = d$status,
                         group = d$group, x = d$x, age = sprintf("%.1f", d$age)), file)
}
write_input(noties$data, "ph_noties_input.csv", "%.4f")
write_input(ties$data, "ph_ties_input.csv", "%.0f")

read_input <- function(file) {
  d <- read.csv(file.path(out_dir, file), colClasses = c(group = "character"))
  d$group <- factor(d$group, levels = c("a", "b", "c"))
  d
}
datasets <- list(noties = read_input("ph_noties_input.csv"),
                 ties = read_input("ph_ties_input.csv"))
seeds <- c(noties = noties$seed, ties = ties$seed)

# sanity of the data read back
with(datasets$noties, {
  stopifnot(length(unique(time)) == length(time),               # no ties of any kind
            status[which.max(time)] == 0)
})
with(datasets$ties, {
  stopifnot(all(time == round(time)), min(time) >= 1, max(time) <= 120,
            all(status[time == max(time)] == 0))
})

# ---------------------------------------------------------------------------------------
# Person-period expansion
# ---------------------------------------------------------------------------------------
expand <- function(d) {
  taus <- sort(unique(d$time[d$status == 1]))
  pp <- do.call(rbind, lapply(taus, function(tau) {
    r <- d[d$time >= tau, ]                        # censored at tau: at risk, y = 0
    r$tau <- tau
    r$y <- as.integer(r$status == 1 & r$time == tau)
    r
  }))
  pp$ftau <- factor(pp$tau, levels = taus)         # levels sorted numerically
  rownames(pp) <- NULL
  pp
}

ctrl <- glm.control(epsilon = 1e-13, maxit = 100)
# glm's IRLS is Fisher scoring, which for the (non-canonical) cloglog link converges only
# linearly, and its stopping rule is on the deviance: at epsilon = 1e-13 the coefficients
# can still be ~4e-7 from the optimum.  So the fit is restarted from its own solution until
# the Newton step (computed by hand below) is below 1e-11.
fit_cloglog <- function(formula, data, label) {
  fit <- quiet_warn(glm(formula, family = binomial(link = "cloglog"), data = data,
                        control = ctrl), label)
  n_fits <- 1
  # (always restart at least once: glm returns the IRLS weights of its last iteration's
  # starting point, and anova(test = "Rao") uses them)
  while (n_fits == 1 || newton_step(fit) > 1e-11) {
    stopifnot(n_fits < 50)
    fit <- quiet_warn(glm(formula, family = binomial(link = "cloglog"), data = data,
                          start = coef(fit), control = ctrl), label)
    n_fits <- n_fits + 1
  }
  fit$n_fits <- n_fits
  fit
}
rename_term <- function(k) {
  k <- sub("^group([a-z]+)$", "group[T.\\1]", k)
  k
}

rows <- list()
add <- function(ds, method, quantity, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(dataset = ds, method = method, quantity = quantity,
                                          term = term, value = fmt(value))
}
warn_log <- character()
quiet_warn <- function(expr, label) {
  withCallingHandlers(expr, warning = function(w) {
    warn_log <<- c(warn_log, sprintf("%s: %s", label, conditionMessage(w)))
    invokeRestart("muffleWarning")
  })
}

# Newton step at a GLM's solution: (X'WX)^-1 X' (dl/deta), the score of the Bernoulli
# cloglog log-likelihood computed by hand.
newton_step <- function(fit) {
  X <- model.matrix(fit)
  eta <- fit$linear.predictors
  mu <- 1 - exp(-exp(eta))
  dmu <- exp(eta - exp(eta))
  score <- crossprod(X, (fit$y - mu) * dmu / (mu * (1 - mu)))
  max(abs(vcov(fit) %*% score))
}

# Rao score statistic for adding columns to the null model, by hand (expected information
# at the null fit, whose score for the time factor is zero).
rao_by_hand <- function(fit0, fit1) {
  X <- model.matrix(fit1)
  mu <- fitted(fit0)
  eta <- fit0$linear.predictors
  dmu <- exp(eta - exp(eta))
  U <- crossprod(X, (fit0$y - mu) * dmu / (mu * (1 - mu)))
  info <- crossprod(X * (dmu^2 / (mu * (1 - mu))), X)
  drop(crossprod(U, solve(info, U)))
}

# The same Rao statistic in closed form, as a log-rank-type sum over event times.  At the null
# fit h_k = d_k / n_k; with eta = log(-log(1 - h)) the Bernoulli-cloglog score per row is
# (y - h) c_k, c_k = -log(1 - h_k) / h_k, and the expected information weight is
# w_k = log(1 - h_k)^2 (1 - h_k) / h_k.  With S1_k = sum of z over the risk set,
# S2_k = sum of z z' over the risk set and D_k = sum of z over the events at tau_k:
#     U = sum_k c_k (D_k - h_k S1_k),   I = sum_k w_k (S2_k - S1_k S1_k' / n_k),
#     statistic = U' I^-1 U.
# (The log-rank statistic has c_k = 1 and w_k n_k replaced by d_k (n_k - d_k) / (n_k - 1).)
rao_closed_form <- function(d, Z) {
  Z <- as.matrix(Z)
  taus <- sort(unique(d$time[d$status == 1]))
  U <- numeric(ncol(Z)); I <- matrix(0, ncol(Z), ncol(Z))
  for (tau in taus) {
    r <- d$time >= tau; e <- d$time == tau & d$status == 1
    n <- sum(r); dd <- sum(e); h <- dd / n
    ck <- -log1p(-h) / h; wk <- log1p(-h)^2 * (1 - h) / h
    S1 <- colSums(Z[r, , drop = FALSE]); S2 <- crossprod(Z[r, , drop = FALSE])
    U <- U + ck * (colSums(Z[e, , drop = FALSE]) - h * S1)
    I <- I + wk * (S2 - tcrossprod(S1) / n)
  }
  drop(crossprod(U, solve(I, U)))
}

# Interval log-likelihood per subject, from the fitted alpha (time coefficients) and b.
interval_loglik <- function(d, taus, alpha, beta) {
  Xc <- cbind(x = d$x, age = d$age, groupb = as.numeric(d$group == "b"),
              groupc = as.numeric(d$group == "c"))
  lp <- drop(Xc %*% beta[c("x", "age", "groupb", "groupc")])
  ll <- numeric(nrow(d))
  for (i in seq_len(nrow(d))) {
    k <- sum(taus <= d$time[i])                     # index of the last event time <= time
    H <- cumsum(exp(alpha + lp[i]))                  # -log S(tau_j | x), j = 1..K
    logS_k <- if (k > 0) -H[k] else 0
    if (d$status[i] == 1) {
      stopifnot(taus[k] == d$time[i])
      logS_prev <- if (k > 1) -H[k - 1] else 0
      ll[i] <- logS_prev + log(-expm1(logS_k - logS_prev))   # log{S(t-) - S(t)}
    } else {
      ll[i] <- logS_k                                         # log S(c)
    }
  }
  sum(ll)
}

checks <- list()
for (ds in names(datasets)) {
  d <- datasets[[ds]]
  pp <- expand(d)
  taus <- sort(unique(d$time[d$status == 1]))
  K <- length(taus)
  km <- survfit(Surv(time, status) ~ 1, data = d)
  ev <- km$n.event > 0
  stopifnot(all.equal(km$time[ev], taus, tolerance = 0))
  n_k <- km$n.risk[ev]; d_k <- km$n.event[ev]
  stopifnot(all(n_k > d_k))                          # no hazard of 1: all alphas finite
  # the expansion's risk sets match survfit's
  stopifnot(all(tapply(pp$y, pp$ftau, length) == n_k), all(tapply(pp$y, pp$ftau, sum) == d_k))

  add(ds, "data", "n", "", nrow(d))
  add(ds, "data", "n_events", "", sum(d$status))
  add(ds, "data", "n_censored", "", sum(d$status == 0))
  add(ds, "data", "n_event_times", "", K)
  add(ds, "data", "n_person_periods", "", nrow(pp))
  add(ds, "data", "n_censored_at_event_time", "", sum(d$status == 0 & d$time %in% taus))
  add(ds, "data", "max_events_at_one_time", "", max(d_k))
  add(ds, "data", "seed", "", seeds[[ds]])

  # ---- 1. cloglog GLMs --------------------------------------------------------------------
  fit0 <- fit_cloglog(y ~ 0 + ftau, pp, paste(ds, "glm null"))
  fit1 <- fit_cloglog(y ~ 0 + ftau + x + age + group, pp, paste(ds, "glm full"))
  fitg <- fit_cloglog(y ~ 0 + ftau + group, pp, paste(ds, "glm group"))
  fitx <- fit_cloglog(y ~ 0 + ftau + x, pp, paste(ds, "glm x"))
  for (f in list(fit0, fit1, fitg, fitx)) {
    stopifnot(f$converged, !f$boundary, all(is.finite(coef(f))), is.finite(logLik(f)),
              all(is.finite(sqrt(diag(vcov(f))))))
  }
  steps <- sapply(list(fit0, fit1, fitg, fitx), newton_step)
  ll0 <- as.numeric(logLik(fit0)); ll1 <- as.numeric(logLik(fit1))

  # null log-likelihood from the Kaplan-Meier risk sets
  h <- d_k / n_k
  ll_km <- sum(d_k * log(h) + (n_k - d_k) * log1p(-h))
  # interval log-likelihood at the full fit
  cf1 <- coef(fit1)
  alpha1 <- unname(cf1[paste0("ftau", taus)])
  ll_int <- interval_loglik(d, taus, alpha1, cf1)
  # and at the null fit (b = 0)
  ll_int0 <- interval_loglik(d, taus, unname(coef(fit0)),
                             c(x = 0, age = 0, groupb = 0, groupc = 0))
  checks[[ds]] <- c(null_loglik_km_minus_glm = ll_km - ll0,
                    interval_loglik_minus_glm = ll_int - ll1,
                    interval_loglik_null_minus_glm = ll_int0 - ll0,
                    null_alpha_minus_log_minus_log1p_h = max(abs(coef(fit0) - log(-log1p(-h)))),
                    max_newton_step = max(steps))
  cat(sprintf("%s: n %d, events %d, event times %d, person-periods %d, censored at an event time %d, seed %d\n",
              ds, nrow(d), sum(d$status), K, nrow(pp), sum(d$status == 0 & d$time %in% taus),
              seeds[[ds]]))
  cat(sprintf("  glm calls (restarts + 1): null %d, full %d, group %d, x %d; max |Newton step| %.1e\n",
              fit0$n_fits, fit1$n_fits, fitg$n_fits, fitx$n_fits, max(steps)))
  cat(sprintf("  null logLik %.12f, KM formula - glm %.3g; full logLik %.12f, interval formula - glm %.3g (null %.3g)\n",
              ll0, ll_km - ll0, ll1, ll_int - ll1, ll_int0 - ll0))
  stopifnot(abs(ll_km - ll0) < 1e-9, abs(ll_int - ll1) < 1e-9, abs(ll_int0 - ll0) < 1e-9,
            max(steps) < 1e-11)

  V1 <- vcov(fit1)
  for (k in c("x", "age", "groupb", "groupc")) {
    add(ds, "cloglog_glm", "coef", rename_term(k), cf1[[k]])
    add(ds, "cloglog_glm", "se", rename_term(k), sqrt(V1[k, k]))
  }
  for (i in c("x", "age", "groupb", "groupc")) for (j in c("x", "age", "groupb", "groupc")) {
    add(ds, "cloglog_glm", "vcov", paste0(rename_term(i), "|", rename_term(j)), V1[i, j])
  }
  add(ds, "cloglog_glm", "loglik", "", ll1)
  add(ds, "cloglog_glm", "converged", "", as.numeric(fit1$converged))
  for (k in seq_len(K)) add(ds, "cloglog_glm", "alpha", fmt(taus[k]), alpha1[k])
  add(ds, "cloglog_glm_null", "loglik", "", ll0)
  add(ds, "cloglog_glm_null", "converged", "", as.numeric(fit0$converged))
  for (k in seq_len(K)) add(ds, "cloglog_glm_null", "alpha", fmt(taus[k]), coef(fit0)[[k]])
  # the fitted baseline (x = 0, age = 0, group a) survival at each event time
  for (k in seq_len(K)) {
    add(ds, "cloglog_glm", "baseline_survival", fmt(taus[k]), exp(-sum(exp(alpha1[1:k]))))
  }

  # ---- 2. coxph ---------------------------------------------------------------------------
  for (ties_method in c("efron", "breslow")) {
    cx <- quiet_warn(coxph(Surv(time, status) ~ x + age + group, data = d, ties = ties_method,
                           control = coxph.control(eps = 1e-11, iter.max = 100)),
                     paste(ds, "coxph", ties_method))
    stopifnot(cx$iter < 100)
    # convergence: the score test statistic U'I^-1U at the solution (no iterations) is ~0
    cx_at <- coxph(Surv(time, status) ~ x + age + group, data = d, ties = ties_method,
                   init = coef(cx), control = coxph.control(iter.max = 0))
    cat(sprintf("  coxph %-7s iter %d, score statistic at the solution %.2g\n",
                ties_method, cx$iter, cx_at$score))
    stopifnot(cx_at$score < 1e-18)
    m <- paste0("coxph_", ties_method)
    for (k in names(coef(cx))) {
      add(ds, m, "coef", rename_term(k), coef(cx)[[k]])
      add(ds, m, "se", rename_term(k), sqrt(vcov(cx)[k, k]))
    }
    add(ds, m, "loglik", "", cx$loglik[2])
    add(ds, m, "loglik_null", "", cx$loglik[1])
    add(ds, m, "score_test", "", cx$score)          # all 4 df, at b = 0
  }

  # ---- 3. score tests ---------------------------------------------------------------------
  for (v in c("group", "x")) {
    fitv <- if (v == "group") fitg else fitx
    a <- anova(fit0, fitv, test = "Rao")
    rao <- a$Rao[2]
    rao_hand <- rao_by_hand(fit0, fitv)
    Z <- if (v == "group") cbind(as.numeric(d$group == "b"), as.numeric(d$group == "c")) else d$x
    rao_cf <- rao_closed_form(d, Z)
    cat(sprintf("  Rao %s: anova %.12f, by hand - anova %.3g, closed form - anova %.3g\n",
                v, rao, rao_hand - rao, rao_cf - rao))
    stopifnot(abs(rao_hand - rao) < 1e-10 * max(1, rao), abs(rao_cf - rao) < 1e-10 * max(1, rao))
    checks[[ds]][[paste0("rao_", v, "_closed_form_minus_anova")]] <- rao_cf - rao
    m <- paste0("glm_rao_", v)
    add(ds, m, "statistic", "", rao)
    add(ds, m, "df", "", a$Df[2])
    add(ds, m, "p_value", "", pchisq(rao, a$Df[2], lower.tail = FALSE))
    add(ds, m, "lr_statistic", "", a$Deviance[2])   # 2 (logLik1 - logLik0)
    # coxph score tests of the same variable alone (survival's own score test)
    # (survdiff's chisq is the score test of ties = "exact", the discrete-logistic
    # likelihood; without ties all three agree)
    for (ties_method in c("efron", "breslow", "exact")) {
      cx1 <- coxph(as.formula(paste("Surv(time, status) ~", v)), data = d, ties = ties_method)
      add(ds, m, paste0("coxph_", ties_method, "_score_test"), "", cx1$score)
      if (ties_method == "exact") score_exact <- cx1$score
    }

    sd_ <- survdiff(as.formula(paste("Surv(time, status) ~", v)), data = d)
    df_sd <- length(sd_$n) - 1
    stopifnot(abs(sd_$chisq - score_exact) < 1e-9 * sd_$chisq)
    m <- paste0("survdiff_", v)
    add(ds, m, "chisq", "", sd_$chisq)
    add(ds, m, "df", "", df_sd)
    add(ds, m, "p_value", "", pchisq(sd_$chisq, df_sd, lower.tail = FALSE))
    lev <- sub("^[a-z]+=", "", names(sd_$n))
    for (g in seq_along(lev)) {
      add(ds, m, "n", lev[g], sd_$n[[g]])
      add(ds, m, "observed", lev[g], sd_$obs[g])
      add(ds, m, "expected", lev[g], sd_$exp[g])
    }
    for (g in seq_along(lev)) for (h2 in seq_along(lev)) {
      add(ds, m, "var", paste0(lev[g], "|", lev[h2]), sd_$var[g, h2])
    }
  }

  # ---- 4. stratified log-rank ---------------------------------------------------------------
  sds <- survdiff(Surv(time, status) ~ x + strata(group), data = d)
  m <- "survdiff_x_strata_group"
  add(ds, m, "chisq", "", sds$chisq)
  add(ds, m, "df", "", 1)
  add(ds, m, "p_value", "", pchisq(sds$chisq, 1, lower.tail = FALSE))
  obs <- rowSums(sds$obs); ex <- rowSums(sds$exp)
  lev <- sub("^x=", "", names(sds$n))
  for (g in seq_along(lev)) {
    add(ds, m, "observed", lev[g], obs[g])
    add(ds, m, "expected", lev[g], ex[g])
  }
  add(ds, m, "var", "1|1", sds$var[2, 2])

  for (k in names(checks[[ds]])) add(ds, "check", k, "", checks[[ds]][[k]])
}

values <- do.call(rbind, rows)
write_table(values, "ph_values.csv")
writeLines(c(versions,
             paste("noties seed", seeds[["noties"]], "| ties seed", seeds[["ties"]])),
           file.path(out_dir, "ph_versions.txt"))
cat("warnings:", if (length(warn_log)) paste(warn_log, collapse = "\n") else "none", "\n")
cat("wrote", nrow(values), "rows to ph_values.csv\n")
