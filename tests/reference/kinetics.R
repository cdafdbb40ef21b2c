# Reference values for the regeneration-kinetics model (regen.fit_regeneration), computed
# with R's survival::survreg and a profiled lag.
#
# Run from the repository root:   Rscript tests/reference/kinetics.R
# (the script finds its own folder, so any working directory works).
#
# The model --------------------------------------------------------------------------------
# Each row is a numbness episode (lower, upper] in days with a distance d (mm) and
# covariates x.  The time to recovery is
#     T = L + d / v,    log v = x'beta - sigma * eps,
# eps standard normal (dist "lognormal") or standard minimum extreme value ("weibull").
# For a FIXED lag L, Y = (T - L) / d is an AFT model,  log Y = -x'beta + sigma * eps,
# so survreg's coefficients are -beta and its scale is sigma.  The episode (l, u] becomes
#     ( max(l - L, 0) / d ,  (u - L) / d ]
# which is left-censored when l <= L and right-censored when u = inf.  The lag must lie in
# [0, min finite upper), so every finite (u - L) / d is > 0.
#
# How the rows are passed to survreg (the convention of aft.R, see README.md) --------------
#   Surv(yl, yu, type = "interval2") with
#     yl = NA  when l <= L (left-censored; survreg rejects 0 for log-time distributions),
#     yu = NA  when u = inf (right-censored).
#   A row with l <= L and u = inf is (0, inf): its likelihood term is log 1 = 0.  survreg
#   would drop it (both ends NA make the status NA); the script drops it explicitly and
#   counts it (quantity n_uninformative).
# The input has no exact rows (checked), so the likelihood needs no Jacobian: for exact
# rows the log-likelihood of T would be survreg's (which already holds -log y for the
# density of Y) minus log d per exact row.  The script recomputes the log-likelihood on the
# day scale from the model and checks it against survreg's fit$loglik[2].
#
# Estimation -----------------------------------------------------------------------------
#   profile(L) = survreg's maximised log-likelihood at lag L
#                (survreg.control(rel.tolerance = 1e-12, maxiter = 200)).
#   Lag MLE    = optimize(profile, c(0, lag_max), maximum = TRUE, tol = 1e-9), with
#                lag_max = min finite upper.  A grid of lags (0, 0.25, ..., < lag_max)
#                checks that optimize found the global maximum.
#   95% interval: {L : profile(L) >= profile(Lhat) - qchisq(0.95, 1) / 2}; each end by
#                uniroot(tol = 1e-10) between Lhat and the first grid lag outside (or 0 if
#                profile(0) is inside).
#
# Input and outputs (in this folder) ------------------------------------------------------
#   kinetics_input.csv   lower, upper, distance_mm, age, diabetes, smoker  (369 rows;
#                        made by Python, see tests/survival/test_regeneration_reference.py;
#                        upper = "inf" for right-censored rows, whole numbers elsewhere)
#   kinetics_values.csv  formula, dist, quantity, term, value  (long format, 17 sig. digits)
# formula is written as regen's formula string:
#   "~ I((age - 50) / 10) + diabetes + smoker"  (R: ~ I((age - 50)/10) + diabetes + smoker)
#   "~ 1"
# quantity (term):
#   lag (estimate | ci_lower | ci_upper)    lag MLE and its 95% profile-likelihood interval
#   loglik ()                               profile(Lhat)
#   beta (R's coefficient name)             -coef(survreg) at Lhat
#   log_scale (Log(scale))                  log(sigma) at Lhat
#   profile_loglik (lag, e.g. "10")         profile(L) at L = 0, 5, 10, 15, 20
#   fixed_beta, fixed_se (coef name; fixed_se also Log(scale)), fixed_log_scale (Log(scale)),
#   fixed_loglik ()                         the fit with the lag fixed at fixed_lag ();
#                                           se = sqrt(diag(vcov(fit))), conditional on the lag
#                                           (the se of beta is that of -coef)
#   lag_max (), cut () (= qchisq(0.95, 1) / 2), n (), n_uninformative_at_lag_hat ()
#   check_* ()                              convergence diagnostics, informative only:
#     check_grid_max_minus_loglik   max over the grid minus profile(Lhat) (<= 0 if global)
#     check_slope                   (profile(Lhat + h) - profile(Lhat - h)) / 2h, h = 1e-4
#     check_ci_lower_gap, check_ci_upper_gap   profile(end) - (profile(Lhat) - cut)
#     check_manual_loglik           day-scale log-likelihood recomputed here minus survreg's,
#                                   at Lhat
#     check_newton_step             max |vcov %*% score| of the fixed-lag fit (score by
#                                   central differences of the recomputed log-likelihood)

suppressPackageStartupMessages(library(survival))

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
out_dir <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()

cat(R.version.string, "\n")
cat("survival", as.character(packageVersion("survival")), "\n")

fmt <- function(x, digits = 17) {
  out <- ifelse(is.na(x), "NA", ifelse(x > 0, "inf", "-inf"))
  ok <- is.finite(x)
  out[ok] <- trimws(formatC(x[ok], digits = digits, format = "g"))
  out
}

data <- read.csv(file.path(out_dir, "kinetics_input.csv"), stringsAsFactors = FALSE,
                 colClasses = c(upper = "character"))
data$upper <- ifelse(data$upper == "inf", Inf, suppressWarnings(as.numeric(data$upper)))
stopifnot(!anyNA(data), all(data$distance_mm > 0), all(data$lower >= 0),
          all(data$lower < data$upper))                      # no exact rows
lag_max <- min(data$upper[is.finite(data$upper)])
cut <- qchisq(0.95, 1) / 2
cat(sprintf("n = %d, right-censored %d, left-censored %d, lag_max %g\n", nrow(data),
            sum(is.infinite(data$upper)), sum(data$lower == 0), lag_max))

formulas <- c("~ I((age - 50) / 10) + diabetes + smoker",
              "~ 1")
dists <- c("lognormal", "weibull")
ctrl <- survreg.control(rel.tolerance = 1e-12, maxiter = 200)
fixed_lags <- c(0, 5, 10, 15, 20)
fixed_lag <- 10

# The episodes as intervals of Y = (T - L) / d, in survreg's encoding.
transform <- function(L) {
  d <- data
  yl <- pmax(d$lower - L, 0) / d$distance_mm
  yu <- (d$upper - L) / d$distance_mm
  d$yl <- ifelse(yl > 0, yl, NA)
  d$yu <- ifelse(is.finite(yu), yu, NA)
  d$informative <- !(is.na(d$yl) & is.na(d$yu))
  d
}

fit_at <- function(L, formula, dist) {
  stopifnot(L >= 0, L < lag_max)
  d <- transform(L)
  d <- d[d$informative, ]
  f <- as.formula(paste("Surv(yl, yu, type = \"interval2\")", formula))
  fit <- survreg(f, data = d, dist = dist, control = ctrl)
  stopifnot(fit$iter < ctrl$maxiter, length(fit$linear.predictors) == nrow(d))
  fit$n_uninformative <- nrow(data) - nrow(d)
  fit
}

profile <- function(L, formula, dist) fit_at(L, formula, dist)$loglik[2]

# Log-likelihood of the episodes on the day scale, straight from the model:
# P(l < T <= u) = F0(z_u) - F0(z_l), z = (log((t - L) / d) + x'beta) / sigma, F0(z) = 0 for
# t <= L.  theta = (beta, log sigma).
manual_loglik <- function(theta, L, formula, dist) {
  X <- model.matrix(as.formula(formula), data)
  k <- ncol(X)
  eta <- drop(X %*% theta[seq_len(k)]); s <- exp(theta[k + 1])
  F0 <- switch(dist, lognormal = pnorm, weibull = function(z) -expm1(-exp(z)))
  z <- function(t) {
    out <- rep(-Inf, length(t))
    ok <- t > L
    out[ok] <- (log((t[ok] - L) / data$distance_mm[ok]) + eta[ok]) / s
    out
  }
  upper_cdf <- ifelse(is.finite(data$upper), F0(z(data$upper)), 1)
  sum(log(upper_cdf - F0(z(data$lower))))
}

rows <- list()
add <- function(formula, dist, quantity, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(formula = formula, dist = dist, quantity = quantity,
                                          term = term, value = fmt(value))
}
warn_log <- character()
grid <- seq(0, lag_max, by = 0.25)
grid <- grid[grid < lag_max]

for (formula in formulas) {
  for (dist in dists) {
    withCallingHandlers({
      prof <- function(L) profile(L, formula, dist)
      grid_values <- vapply(grid, prof, numeric(1))
      opt <- optimize(prof, c(0, lag_max), maximum = TRUE, tol = 1e-9)
      lag_hat <- opt$maximum
      fit <- fit_at(lag_hat, formula, dist)
      peak <- fit$loglik[2]
      stopifnot(peak >= max(grid_values))               # optimize found the global maximum
      target <- function(L) prof(L) - (peak - cut)
      inside <- grid_values >= peak - cut
      below <- grid[grid < lag_hat & !inside]
      above <- grid[grid > lag_hat & !inside]
      stopifnot(length(above) > 0)                       # the interval ends below lag_max
      ci_lower <- if (target(0) >= 0) 0 else
        uniroot(target, c(max(below), lag_hat), tol = 1e-10)$root
      ci_upper <- uniroot(target, c(lag_hat, min(above)), tol = 1e-10)$root
      # inside grid lags must form one run around lag_hat (a unimodal profile there)
      stopifnot(all(inside[grid >= ci_lower & grid <= ci_upper]),
                !any(inside[grid < ci_lower | grid > ci_upper]))

      h <- 1e-4
      slope <- (prof(lag_hat + h) - prof(lag_hat - h)) / (2 * h)
      theta_hat <- c(-coef(fit), log(fit$scale))
      manual <- manual_loglik(theta_hat, lag_hat, formula, dist) - peak

      add(formula, dist, "lag", "estimate", lag_hat)
      add(formula, dist, "lag", "ci_lower", ci_lower)
      add(formula, dist, "lag", "ci_upper", ci_upper)
      add(formula, dist, "loglik", "", peak)
      for (k in names(coef(fit))) add(formula, dist, "beta", k, -coef(fit)[[k]])
      add(formula, dist, "log_scale", "Log(scale)", log(fit$scale))
      for (L in fixed_lags) add(formula, dist, "profile_loglik", format(L), prof(L))

      fixed <- fit_at(fixed_lag, formula, dist)
      V <- vcov(fixed)
      theta <- c(-coef(fixed), log(fixed$scale))
      # Newton step at survreg's solution, in (beta, log sigma): vcov is the same for beta
      # and -beta up to signs, the step is judged by its size
      hs <- 1e-5
      score <- vapply(seq_along(theta), function(j) {
        e <- replace(numeric(length(theta)), j, hs)
        (manual_loglik(theta + e, fixed_lag, formula, dist) -
           manual_loglik(theta - e, fixed_lag, formula, dist)) / (2 * hs)
      }, numeric(1))
      sign <- c(rep(-1, length(theta) - 1), 1)            # d(-coef) = -d coef
      newton <- max(abs(V %*% (sign * score)))
      for (k in names(coef(fixed))) add(formula, dist, "fixed_beta", k, -coef(fixed)[[k]])
      add(formula, dist, "fixed_log_scale", "Log(scale)", log(fixed$scale))
      for (k in rownames(V)) add(formula, dist, "fixed_se", k, sqrt(V[k, k]))
      add(formula, dist, "fixed_loglik", "", fixed$loglik[2])
      add(formula, dist, "fixed_lag", "", fixed_lag)

      add(formula, dist, "lag_max", "", lag_max)
      add(formula, dist, "cut", "", cut)
      add(formula, dist, "n", "", nrow(data))
      add(formula, dist, "n_uninformative_at_lag_hat", "", fit$n_uninformative)
      add(formula, dist, "check_grid_max_minus_loglik", "", max(grid_values) - peak)
      add(formula, dist, "check_slope", "", slope)
      add(formula, dist, "check_ci_lower_gap", "", if (ci_lower > 0) target(ci_lower) else NA)
      add(formula, dist, "check_ci_upper_gap", "", target(ci_upper))
      add(formula, dist, "check_manual_loglik", "", manual)
      add(formula, dist, "check_newton_step", "", newton)

      cat(sprintf("%-42s %-9s lag %.6f (%.4f, %.4f)  loglik %.10f  slope %.1e  manual-R %.1e  newton %.1e  uninformative %d\n",
                  formula, dist, lag_hat, ci_lower, ci_upper, peak, slope, manual, newton,
                  fit$n_uninformative))
      stopifnot(abs(manual) < 1e-8, abs(slope) < 1e-3, newton < 1e-7)
    }, warning = function(w) {
      warn_log <<- c(warn_log, sprintf("%s/%s: %s", formula, dist, conditionMessage(w)))
      invokeRestart("muffleWarning")
    })
  }
}

values <- do.call(rbind, rows)
write.csv(values, file.path(out_dir, "kinetics_values.csv"), row.names = FALSE, quote = FALSE,
          na = "")
cat("warnings:", if (length(warn_log)) paste(warn_log, collapse = "\n") else "none", "\n")
cat("wrote", nrow(values), "rows to kinetics_values.csv\n")
