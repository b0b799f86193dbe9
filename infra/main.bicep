// Communications Credits bot on Azure: one Linux App Service running the container, an Azure
// Bot registration with the Teams channel, and a Storage account the service reaches with its
// managed identity (no keys). Deploy with `az deployment group create` (README, "Deploy to Azure").
//
// infra/main.json is the same template in ARM JSON, for deployments without the Bicep CLI;
// keep the two in step (tests/infra checks that they declare the same parameters, resources
// and outputs).

@description('Short name for the resources: 2-11 letters, digits or hyphens. A hash of the resource group and this prefix is appended, so names are unique.')
@minLength(2)
@maxLength(11)
param namePrefix string

@description('Region of the App Service and the Storage account (the bot registration is global).')
param location string = resourceGroup().location

@description('App Service plan SKU. Always On (needed by the background jobs) rules out Free and Shared.')
@allowed([
  'B1'
  'B2'
  'B3'
  'S1'
  'S2'
  'S3'
  'P0v3'
  'P1v3'
  'P2v3'
  'P3v3'
])
param appServiceSku string = 'B1'

@description('Number of instances. The service is stateless: any number can run against the same tables.')
@minValue(1)
@maxValue(10)
param instanceCount int = 1

@description('Container image to run, e.g. myregistry.azurecr.io/ccbot:0.1.0')
param containerImage string

@description('Name of an Azure Container Registry in this resource group that holds the image; the web app pulls with its managed identity (AcrPull). Empty for a public image.')
param containerRegistryName string = ''

@description('The bot\'s Entra app (client) id: MicrosoftAppId.')
param microsoftAppId string

@description('MicrosoftAppType: SingleTenant (the app registration is single-tenant) or MultiTenant.')
@allowed([
  'SingleTenant'
  'MultiTenant'
])
param microsoftAppType string = 'SingleTenant'

@description('MicrosoftAppTenantId: the tenant of the app registration.')
param microsoftAppTenantId string = subscription().tenantId

@description('MicrosoftAppPassword: the app registration\'s client secret. Leave empty when microsoftAppPasswordSecretUri is given.')
@secure()
param microsoftAppPassword string = ''

@description('Key Vault secret URI holding the client secret, used instead of microsoftAppPassword (grant the web app\'s identity "Key Vault Secrets User" on the vault).')
param microsoftAppPasswordSecretUri string = ''

@description('STRIPE_SECRET_KEY: the Stripe account\'s secret key (sk_live_...) or a restricted key. Leave empty when stripeSecretKeySecretUri is given.')
@secure()
param stripeSecretKey string = ''

@description('Key Vault secret URI holding the Stripe secret key, used instead of stripeSecretKey (grant the web app\'s identity "Key Vault Secrets User" on the vault).')
param stripeSecretKeySecretUri string = ''

@description('STRIPE_WEBHOOK_SECRET: the signing secret (whsec_...) of the webhook endpoint made in Stripe for <web app>/api/payments/stripe. Leave empty when stripeWebhookSecretSecretUri is given.')
@secure()
param stripeWebhookSecret string = ''

@description('Key Vault secret URI holding the Stripe webhook signing secret, used instead of stripeWebhookSecret.')
param stripeWebhookSecretSecretUri string = ''

@description('EXPORT_URL_SECRET: signs the 15-minute download links of the history CSV export; a random secret of at least 32 characters (openssl rand -base64 32). Leave empty when exportUrlSecretSecretUri is given.')
@secure()
param exportUrlSecret string = ''

@description('Key Vault secret URI holding the export link secret, used instead of exportUrlSecret.')
param exportUrlSecretSecretUri string = ''

@description('PUBLIC_BASE_URL: the bot\'s https address as browsers reach it (Stripe Checkout sends admins back to it). Empty: the web app\'s own https://<name>.azurewebsites.net.')
param publicBaseUrl string = ''

@description('Azure Bot pricing tier: F0 (free, standard channels such as Teams are free) or S1.')
@allowed([
  'F0'
  'S1'
])
param botSku string = 'F0'

@description('Name of the bot in the Azure portal and the Bot Framework.')
param botDisplayName string = 'Communications Credits'

@description('TABLE_PREFIX: prefix of every table name, so deployments can share an account.')
param tablePrefix string = 'ccbot'

@description('Tags for every resource.')
param tags object = {}

var suffix = uniqueString(resourceGroup().id, namePrefix)
var webAppName = '${namePrefix}-${suffix}'
var planName = '${namePrefix}-plan-${suffix}'
var botName = '${namePrefix}-bot-${suffix}'
var storageAccountName = take(toLower('${replace(namePrefix, '-', '')}${suffix}'), 24)
// Built-in roles: Storage Table Data Contributor and AcrPull.
var storageTableDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
var acrPull = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
var port = '3978'
var appPasswordSetting = empty(microsoftAppPasswordSecretUri) ? microsoftAppPassword : '@Microsoft.KeyVault(SecretUri=${microsoftAppPasswordSecretUri})'
var stripeSecretKeySetting = empty(stripeSecretKeySecretUri) ? stripeSecretKey : '@Microsoft.KeyVault(SecretUri=${stripeSecretKeySecretUri})'
var stripeWebhookSecretSetting = empty(stripeWebhookSecretSecretUri) ? stripeWebhookSecret : '@Microsoft.KeyVault(SecretUri=${stripeWebhookSecretSecretUri})'
var exportUrlSecretSetting = empty(exportUrlSecretSecretUri) ? exportUrlSecret : '@Microsoft.KeyVault(SecretUri=${exportUrlSecretSecretUri})'
// The web app's own host name, known before it exists (it cannot refer to itself).
var publicBaseUrlSetting = empty(publicBaseUrl) ? 'https://${webAppName}.azurewebsites.net' : publicBaseUrl

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // The service signs in with its managed identity; account keys are switched off.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    accessTier: 'Hot'
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'linux'
  sku: {
    name: appServiceSku
    capacity: instanceCount
  }
  properties: {
    reserved: true
  }
}

resource webApp 'Microsoft.Web/sites@2023-12-01' = {
  name: webAppName
  location: location
  tags: tags
  kind: 'app,linux,container'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    siteConfig: {
      linuxFxVersion: 'DOCKER|${containerImage}'
      acrUseManagedIdentityCreds: !empty(containerRegistryName)
      alwaysOn: true
      healthCheckPath: '/healthz'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        {
          name: 'MicrosoftAppId'
          value: microsoftAppId
        }
        {
          name: 'MicrosoftAppPassword'
          value: appPasswordSetting
        }
        {
          name: 'MicrosoftAppType'
          value: microsoftAppType
        }
        {
          name: 'MicrosoftAppTenantId'
          value: microsoftAppTenantId
        }
        {
          name: 'AZURE_STORAGE_ACCOUNT_URL'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'TABLE_PREFIX'
          value: tablePrefix
        }
        {
          name: 'HOST'
          value: '0.0.0.0'
        }
        {
          name: 'PORT'
          value: port
        }
        {
          name: 'WEBSITES_PORT'
          value: port
        }
        {
          name: 'WEBSITES_ENABLE_APP_SERVICE_STORAGE'
          value: 'false'
        }
        {
          name: 'PAYMENT_GATEWAY'
          value: 'stripe'
        }
        {
          name: 'STRIPE_SECRET_KEY'
          value: stripeSecretKeySetting
        }
        {
          name: 'STRIPE_WEBHOOK_SECRET'
          value: stripeWebhookSecretSetting
        }
        {
          name: 'EXPORT_URL_SECRET'
          value: exportUrlSecretSetting
        }
        {
          name: 'PUBLIC_BASE_URL'
          value: publicBaseUrlSetting
        }
      ]
    }
  }
}

// The service's identity may read and write table data (and create its tables), nothing else.
resource tableDataRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, webApp.id, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: storageTableDataContributor
    principalId: webApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (!empty(containerRegistryName)) {
  name: containerRegistryName
}

resource registryPullRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(containerRegistryName)) {
  name: guid(resourceGroup().id, containerRegistryName, webApp.id, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: acrPull
    principalId: webApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: botName
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: {
    name: botSku
  }
  properties: {
    displayName: botDisplayName
    endpoint: 'https://${webApp.properties.defaultHostName}/api/messages'
    msaAppId: microsoftAppId
    msaAppType: microsoftAppType
    msaAppTenantId: (microsoftAppType == 'SingleTenant') ? microsoftAppTenantId : ''
  }
}

resource teamsChannel 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
    }
  }
}

output webAppName string = webApp.name
output appServicePlanName string = plan.name
output webAppHostName string = webApp.properties.defaultHostName
output botEndpoint string = bot.properties.endpoint
output botName string = bot.name
output storageAccountName string = storage.name
output storageTableEndpoint string = storage.properties.primaryEndpoints.table
output webAppPrincipalId string = webApp.identity.principalId
output stripeWebhookUrl string = '${publicBaseUrlSetting}/api/payments/stripe'
